"""FC handler `token-vendor` (HTTP trigger and InvokeFunction): STS credentials for entitled applications."""

from shared.http.token_vendor import TokenVendorFunction
from shared.logs import audited

handler = audited(TokenVendorFunction().handle)
