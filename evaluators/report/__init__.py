"""`shadowtap report` and `shadowtap gate`: compare each candidate with the primary, and gate on it."""
