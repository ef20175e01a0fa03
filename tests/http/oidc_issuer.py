"""A small OIDC issuer on loopback for the keycloak flavor's tests.

Keycloak's URL layout (<base>/realms/<realm>/protocol/openid-connect/
certs and .../userinfo), real keys (RSA 2048 and EC P-256 from
python3-cryptography) and real signatures: RS256, PS256 and ES256 tokens
are signed as an issuer signs them; the malformed ones (alg none, HS256
keyed with the public key, a foreign key under a known kid) are built by
hand from the same parts. It counts key set fetches per realm, publishes
whatever keys a test chooses (rotation), refuses revoked tokens at
userinfo, and can answer 503 to everything (an issuer outage).
"""
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import \
    decode_dss_signature


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def int_bytes(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


class Key:
    """A signing key: kid, kind ("RSA" / "EC") and its private key."""

    def __init__(self, kind="RSA", kid=None, curve=None):
        self.kind = kind
        self.kid = kid or "%s-%s" % (kind.lower(), uuid.uuid4().hex[:8])
        if kind == "RSA":
            self.priv = rsa.generate_private_key(public_exponent=65537,
                                                 key_size=2048)
        else:
            self.priv = ec.generate_private_key(curve or ec.SECP256R1())

    def jwk(self, alg=None):
        pub = self.priv.public_key().public_numbers()
        if self.kind == "RSA":
            k = {"kty": "RSA", "kid": self.kid, "use": "sig",
                 "n": b64u(int_bytes(pub.n)), "e": b64u(int_bytes(pub.e))}
        else:
            size = (self.priv.curve.key_size + 7) // 8
            crv = {256: "P-256", 384: "P-384", 521: "P-521"}[
                self.priv.curve.key_size]
            k = {"kty": "EC", "kid": self.kid, "use": "sig", "crv": crv,
                 "x": b64u(int_bytes(pub.x, size)),
                 "y": b64u(int_bytes(pub.y, size))}
        if alg:
            k["alg"] = alg
        return k

    def public_pem(self):
        return self.priv.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, alg, data):
        if alg == "RS256":
            return self.priv.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if alg == "PS256":
            return self.priv.sign(data, padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256())
        if alg == "ES256":
            r, s = decode_dss_signature(self.priv.sign(
                data, ec.ECDSA(hashes.SHA256())))
            return int_bytes(r, 32) + int_bytes(s, 32)
        raise ValueError(alg)


class Issuer:
    def __init__(self):
        self.realms = {}          # name -> published keys
        self.fetches = {}         # name -> key set fetches
        self.requests = 0         # every request, known realm or not
        self.userinfo_calls = 0
        self.revoked = set()      # tokens userinfo refuses
        self.down = False
        self.enc_key = Key("RSA", "enc-key")
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                issuer.handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = "http://127.0.0.1:%d/auth" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def iss(self, realm):
        return "%s/realms/%s" % (self.base, realm)

    def publish(self, realm, keys):
        """The keys the realm's key set lists from now on (plus an
        encryption key, as Keycloak lists one, that glared must skip)."""
        self.realms[realm] = list(keys)
        self.fetches.setdefault(realm, 0)

    def handle(self, h):
        self.requests += 1
        parts = h.path.split("?")[0].split("/")
        # /auth/realms/<realm>/protocol/openid-connect/<what>
        if self.down:
            return h.reply(503, {"error": "down"})
        if len(parts) != 7 or parts[1:3] != ["auth", "realms"] or \
                parts[4:6] != ["protocol", "openid-connect"] or \
                parts[3] not in self.realms:
            return h.reply(404, {"error": "Realm does not exist"})
        realm, what = parts[3], parts[6]
        if what == "certs":
            self.fetches[realm] += 1
            keys = [k.jwk() for k in self.realms[realm]]
            keys.append(dict(self.enc_key.jwk(), use="enc",
                             alg="RSA-OAEP"))
            return h.reply(200, {"keys": keys})
        if what == "userinfo":
            self.userinfo_calls += 1
            auth = h.headers.get("Authorization", "")
            tok = auth[7:] if auth.startswith("Bearer ") else ""
            if not tok or tok in self.revoked:
                return h.reply(401, {"error": "invalid_token"})
            claims = json.loads(base64.urlsafe_b64decode(
                tok.split(".")[1] + "=="))
            return h.reply(200, {"sub": claims.get("sub"),
                                 "preferred_username":
                                     claims.get("preferred_username")})
        return h.reply(404, {"error": "unknown"})

    def token(self, realm, key, alg="RS256", roles=("member",), sub=None,
              user="alice", lifetime=300, header=None, claims=None,
              sign_with=None):
        now = int(time.time())
        hdr = {"alg": alg, "typ": "JWT", "kid": key.kid}
        hdr.update(header or {})
        body = {
            "exp": now + lifetime, "iat": now, "nbf": now - 1,
            "iss": self.iss(realm), "aud": "account",
            "sub": sub or str(uuid.uuid5(uuid.NAMESPACE_DNS, user)),
            "typ": "Bearer", "azp": "glare-cli",
            "preferred_username": user,
            "realm_access": {"roles": list(roles)},
            "jti": uuid.uuid4().hex,
        }
        body.update(claims or {})
        for k in [k for k, v in body.items() if v is None]:
            del body[k]
        signing_input = (b64u_json(hdr) + "." + b64u_json(body)).encode()
        sig = (sign_with or key).sign(alg, signing_input)
        return signing_input.decode() + "." + b64u(sig)

    @staticmethod
    def unsigned(header, claims, sig=b""):
        return b64u_json(header) + "." + b64u_json(claims) + "." + b64u(sig)

    def hs256_with_public_key(self, realm, key, claims=None):
        """The classic confusion: HMAC keyed with the issuer's public key
        (a verifier that takes alg from the token would accept it)."""
        now = int(time.time())
        hdr = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        body = {"exp": now + 300, "iat": now, "iss": self.iss(realm),
                "sub": "mallory", "realm_access": {"roles": ["admin"]}}
        body.update(claims or {})
        si = (b64u_json(hdr) + "." + b64u_json(body)).encode()
        sig = hmac.new(key.public_pem(), si, hashlib.sha256).digest()
        return si.decode() + "." + b64u(sig)
