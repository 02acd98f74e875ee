"""Who acts: the principal recorded on every change, and what it may do.

Every domain service is built with the acting :class:`Principal`: the SDK's is the login of the
process that runs it (:func:`local_principal`), the server's is resolved from each request.
"""

from shipyard.auth.principal import ANONYMOUS, Principal, current_user, local_principal
from shipyard.auth.roles import Permission

__all__ = ["ANONYMOUS", "Permission", "Principal", "current_user", "local_principal"]
