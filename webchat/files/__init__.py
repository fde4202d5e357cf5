"""Files and images in messages (issue 14): uploads sniffed by content and stored once by
SHA-256 (:mod:`.sniff`, :mod:`.storage`), what webchat does with them (:mod:`.services`), the
API routes (:mod:`.api`), serving to the owner (:mod:`.views`) and ``flask files`` (:mod:`.cli`).
"""

from __future__ import annotations
