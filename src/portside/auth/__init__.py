"""Authentication and authorization: identities, passwords, tokens, roles, LDAP."""
