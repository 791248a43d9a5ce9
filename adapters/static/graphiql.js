// GraphiQL against this page's own URL: queries and mutations over HTTP POST, subscriptions
// over WebSocket (graphql-transport-ws). Every asset is served by the gateway itself.
// With authentication on, put `{"authorization": "Bearer <key>"}` in the Headers editor: HTTP
// calls send those headers, and a subscription's WebSocket sends them in connection_init (the
// gateway authenticates a socket there), one socket per set of headers.
(function () {
  var http = window.location.origin + window.location.pathname;
  var ws = http.replace(/^http/, "ws");
  var fetchers = {};
  function fetcher(params, opts) {
    var headers = (opts && opts.headers) || {};
    var key = JSON.stringify(headers);
    if (!fetchers[key]) {
      fetchers[key] = GraphiQL.createFetcher({
        url: http,
        wsClient: graphqlWs.createClient({ url: ws, lazy: true, connectionParams: headers }),
      });
    }
    return fetchers[key](params, opts);
  }
  ReactDOM.render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultEditorToolsVisibility: true }),
    document.getElementById("graphiql")
  );
})();
