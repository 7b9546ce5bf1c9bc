// Verifies an errand access token against errand's JWKS with panva/jose, a JOSE
// implementation independent of errand's: node verify-jwt.mjs JWKS_URL ISSUER AUDIENCE TOKEN...
// Prints one JSON line per token: {"ok":true,"kid":…,"payload":…} or {"ok":false,"error":…}.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksURL, issuer, audience, ...tokens] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(jwksURL));
for (const token of tokens) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience, algorithms: ["ES256"] });
    console.log(JSON.stringify({ ok: true, kid: protectedHeader.kid, payload }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e.code || e.message) }));
  }
}
