//! Flattened JWS JSON serialisation with EdDSA (Ed25519), as the reference
//! signs new_qname events: `{"payload":…,"protected":…,"signature":…}` with
//! the protected header `{"alg":"EdDSA","kid":"<kid>"}`, all base64url
//! without padding. The key is a JSON JWK (`kty` OKP, `crv` Ed25519, `d`,
//! `kid` required).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::Signer as _;

/// A JWK signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read signing key {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a usable Ed25519 JWK.
    #[error("signing key {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// An Ed25519 signing key with its `kid`.
pub struct JwsSigner {
    kid: String,
    key: ed25519_dalek::SigningKey,
    protected: String,
}

impl std::fmt::Debug for JwsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwsSigner").field("kid", &self.kid).finish()
    }
}

impl JwsSigner {
    /// Load a JWK file.
    ///
    /// # Errors
    /// [`KeyError`] naming the file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_jwk(&text).map_err(|reason| KeyError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parse a JWK; `Err` says what is wrong.
    ///
    /// # Errors
    /// A description of the problem.
    pub fn from_jwk(text: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str());
        if field("kty") != Some("OKP") {
            return Err("kty must be OKP".into());
        }
        match field("crv") {
            Some("Ed25519") => {}
            Some("Ed448") => return Err("Ed448 keys are not supported; use Ed25519".into()),
            _ => return Err("crv must be Ed25519".into()),
        }
        let kid = field("kid")
            .filter(|k| !k.is_empty())
            .ok_or("kid is required")?
            .to_owned();
        let d = B64
            .decode(field("d").ok_or("d (the private key) is missing")?)
            .map_err(|e| format!("d is not base64url: {e}"))?;
        let d: [u8; 32] = d.try_into().map_err(|_| "d must be 32 bytes")?;
        let key = ed25519_dalek::SigningKey::from_bytes(&d);
        if let Some(x) = field("x") {
            let x = B64
                .decode(x)
                .map_err(|e| format!("x is not base64url: {e}"))?;
            if x != key.verifying_key().to_bytes() {
                return Err("x does not match d".into());
            }
        }
        let header = format!(
            "{{\"alg\":\"EdDSA\",\"kid\":{}}}",
            serde_json::Value::from(kid.clone())
        );
        Ok(Self {
            protected: B64.encode(header),
            kid,
            key,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }

    /// Sign `payload`; returns the flattened JWS JSON.
    pub fn sign(&self, payload: &[u8]) -> String {
        let payload = B64.encode(payload);
        let input = format!("{}.{}", self.protected, payload);
        let sig = self.key.sign(input.as_bytes());
        format!(
            "{{\"payload\":\"{payload}\",\"protected\":\"{}\",\"signature\":\"{}\"}}",
            self.protected,
            B64.encode(sig.to_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWK: &str = r#"{"kty":"OKP","crv":"Ed25519","kid":"edm-test","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    #[test]
    fn rfc8037_key_signs_and_verifies() {
        // The key of RFC 8037 appendix A.1/A.2.
        let s = JwsSigner::from_jwk(JWK).unwrap();
        assert_eq!(s.kid(), "edm-test");
        let jws = s.sign(br#"{"type":"new_qname"}"#);
        let v: serde_json::Value = serde_json::from_str(&jws).unwrap();
        let protected = B64.decode(v["protected"].as_str().unwrap()).unwrap();
        assert_eq!(protected, br#"{"alg":"EdDSA","kid":"edm-test"}"#);
        assert_eq!(
            B64.decode(v["payload"].as_str().unwrap()).unwrap(),
            br#"{"type":"new_qname"}"#
        );
        let sig = B64.decode(v["signature"].as_str().unwrap()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        let input = format!(
            "{}.{}",
            v["protected"].as_str().unwrap(),
            v["payload"].as_str().unwrap()
        );
        s.verifying_key()
            .verify_strict(input.as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn rfc8037_signature_vector() {
        // RFC 8037 A.4: payload "Example of Ed25519 signing", header {"alg":"EdDSA"}.
        let d = B64
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&d.try_into().unwrap());
        let sig = key.sign(b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc");
        assert_eq!(
            B64.encode(sig.to_bytes()),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        for (jwk, want) in [
            ("{", "not JSON"),
            (r#"{"kty":"RSA"}"#, "kty"),
            (r#"{"kty":"OKP","crv":"Ed448","kid":"k","d":"AA"}"#, "Ed448"),
            (r#"{"kty":"OKP","crv":"Ed25519","d":"AA"}"#, "kid"),
            (
                r#"{"kty":"OKP","crv":"Ed25519","kid":"k","d":"AA"}"#,
                "32 bytes",
            ),
        ] {
            let e = JwsSigner::from_jwk(jwk).unwrap_err();
            assert!(e.contains(want), "{jwk}: {e}");
        }
        let wrong_x = JWK.replace("11qYAYKx", "21qYAYKx");
        assert!(
            JwsSigner::from_jwk(&wrong_x)
                .unwrap_err()
                .contains("x does not match")
        );
    }
}
