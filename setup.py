"""Maps the source tree onto the one installed `citadel` namespace.

proto/ generates `citadel.*` under generated/, while the hand-written code lives
in server/ and adapters/ at the top level (see DESIGN.md). Installed, they are
`citadel.server` and `citadel.adapters`; nothing bare lands in site-packages.
"""

from setuptools import find_packages, setup

ROOTS = {"citadel": "generated/citadel", "citadel.server": "server", "citadel.adapters": "adapters"}


def packages_under(prefix: str, path: str) -> list[str]:
    return [prefix] + [f"{prefix}.{sub}" for sub in find_packages(path)]


setup(
    packages=[pkg for prefix, path in ROOTS.items() for pkg in packages_under(prefix, path)],
    package_dir=ROOTS,
    package_data={
        "citadel": ["*.binpb", "*.json", "*.graphql"],
        "citadel.adapters": ["static/**/*"],
        "citadel.server.models": ["assets/**/*"],
    },
    include_package_data=True,
)
