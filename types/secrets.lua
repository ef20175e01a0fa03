--- Secrets: small confidential payloads such as keys, certificates and
-- passphrases (not enabled by default).
local String = glare.String

return glare.type {
  name = "secrets",
  display_name = "Secrets",
  version = "1.0",
  fields = {
    { payload = glare.Blob { required_on_activate = true,
        description = "The secret itself." } },
    { payload_content_encoding = String { allowed_values = { "base64" },
        default = "base64", filter_ops = {},
        description = "Encoding of the payload; only base64 is defined." } },
    { secret_type = String {
        allowed_values = { "symmetric", "public", "private", "passphrase", "certificate", "opaque" },
        default = "opaque", sortable = true, filter_ops = { "eq" },
        description = "What the payload is: a symmetric key, one half of a key pair, "
          .. "a passphrase, a certificate, or opaque data." } },
    { algorithm = String { filter_ops = { "eq" },
        description = "Algorithm the secret is used with, e.g. aes or rsa." } },
    { bit_length = glare.Integer { min = 1, sortable = true,
        description = "Key size in bits." } },
    { mode = String { filter_ops = { "eq" },
        description = "Block cipher mode the secret is used with, e.g. cbc." } },
  },
}
