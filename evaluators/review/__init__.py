"""`shadowtap ui`: a local web app over the store for reading the verdict, the exchanges behind
it, and labelling answers as a named reviewer (stored as feedback, as the feedback API stores it)."""
