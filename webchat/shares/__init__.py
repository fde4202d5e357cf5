"""Share links: read-only snapshots of a conversation that anyone with the link can read
(:mod:`.services`), the shared page and the owner's list (:mod:`.views`)."""
