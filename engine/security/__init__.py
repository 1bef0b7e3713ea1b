"""Who may do what: users, their API tokens, the roles they hold and the audit trail of
every change to them. API tokens are checked through one small protocol in
:mod:`engine.security.identity`; people signing in to the console may be vouched for by
an LDAP directory (:mod:`engine.security.ldap_directory`)."""
