"""Who may do what: users, their API tokens, the roles they hold and the audit trail of
every change to them. Identity sources (the database now, LDAP later) share one small
protocol in :mod:`engine.security.identity`."""
