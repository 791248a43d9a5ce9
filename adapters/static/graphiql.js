// GraphiQL against this page's own URL: queries and mutations over HTTP POST, subscriptions
// over WebSocket (graphql-transport-ws). Every asset is served by the gateway itself.
(function () {
  var http = window.location.origin + window.location.pathname;
  var ws = http.replace(/^http/, "ws");
  var fetcher = GraphiQL.createFetcher({
    url: http,
    wsClient: graphqlWs.createClient({ url: ws, lazy: true }),
  });
  ReactDOM.render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultEditorToolsVisibility: true }),
    document.getElementById("graphiql")
  );
})();
