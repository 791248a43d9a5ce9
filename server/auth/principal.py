"""Who is calling: an authenticated subject with a role and, optionally, a tenant."""

from __future__ import annotations

from dataclasses import dataclass

from citadel.options.v1 import options_pb2

ROLE_NAMES = {
    options_pb2.ROLE_READER: "reader",
    options_pb2.ROLE_WRITER: "writer",
    options_pb2.ROLE_ADMIN: "admin",
}
ROLES_BY_NAME = {v: k for k, v in ROLE_NAMES.items()}


@dataclass(frozen=True)
class Principal:
    subject: str  # "key:<id>", "jwt:<sub>" or "anonymous"
    role: int  # options_pb2.Role; the enum's order is the privilege order
    tenant: str = ""  # empty: the shared namespace

    @property
    def role_name(self) -> str:
        return ROLE_NAMES[self.role]

    def may(self, required: int) -> bool:
        return self.role >= required


# Used when authentication is switched off explicitly (development).
ANONYMOUS = Principal(subject="anonymous", role=options_pb2.ROLE_ADMIN)


def parse_role(where: str, value: object) -> int:
    role = ROLES_BY_NAME.get(str(value))
    if role is None:
        raise ValueError(f"{where}: role {value!r} is not one of reader, writer, admin")
    return role
