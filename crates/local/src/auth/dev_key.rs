//! The development key: one Ed25519 key pair per user (see [`default_key_file`]), created
//! by `cruddur dev` on first run and published at [`JWKS_PATH`] as a user pool publishes its
//! keys, so that `cruddur token <handle>` and `cruddur listen` can mint tokens for seeded
//! users from any directory, and check first that the running stack trusts them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use functions::jwt::{JwksFetchError, fetch_jwks};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// Issuer and client id of development tokens.
pub const DEV_ISSUER: &str = "https://cruddur.local/dev";
pub const DEV_CLIENT_ID: &str = "cruddur-local-dev";
/// Names the development key file, overriding the per-user default.
pub const DEV_KEY_FILE_ENV: &str = "CRUDDUR_DEV_KEY_FILE";
/// Where a local stack publishes its development key, as a user pool does.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The development key's file: `$CRUDDUR_DEV_KEY_FILE`, else
/// `$XDG_CONFIG_HOME/cruddur/dev-signing-key.pk8`, else
/// `$HOME/.config/cruddur/dev-signing-key.pk8`. One key per user, wherever a command runs, so
/// `cruddur dev` and `cruddur token` agree from any directory (and across checkouts).
pub fn default_key_file() -> anyhow::Result<PathBuf> {
    key_file_from(|name| std::env::var_os(name)).with_context(|| {
        format!("no place for the development key: set {DEV_KEY_FILE_ENV}, XDG_CONFIG_HOME or HOME")
    })
}

fn key_file_from(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    // Empty values count as unset, as the XDG base directory specification says.
    let var = |name: &str| {
        env(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(file) = var(DEV_KEY_FILE_ENV) {
        return Some(file);
    }
    let config = var("XDG_CONFIG_HOME")
        .filter(|dir| dir.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".config")))?;
    Some(config.join("cruddur").join("dev-signing-key.pk8"))
}

/// The development key pair: Ed25519, stored as PKCS#8.
pub struct DevSigner {
    pkcs8: Vec<u8>,
    public_key: Vec<u8>,
    key_id: String,
    path: PathBuf,
}

impl DevSigner {
    /// Reads the key at `path`, creating it (and its folder) on first use. For the stack,
    /// which owns the key; a token issuer uses [`DevSigner::load`].
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        let pkcs8 = match read_private(path) {
            Ok(bytes) => bytes?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| anyhow::anyhow!("could not generate a key pair"))?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                write_private(path, document.as_ref())
                    .with_context(|| format!("writing {}", path.display()))?;
                document.as_ref().to_vec()
            }
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        Self::from_pkcs8(pkcs8, path)
    }

    /// Reads the key at `path`; never creates one. A token signed with a key nobody trusts
    /// is worse than no token: it fails later, at the stack, with a bare 401.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let pkcs8 = match read_private(path) {
            Ok(bytes) => bytes?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "no development key at {}: `cruddur dev` (or `make dev`) creates it on first \
                 run; a stack started with --key-file uses that file, so pass the same --key-file \
                 (or set {DEV_KEY_FILE_ENV})",
                path.display()
            ),
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        Self::from_pkcs8(pkcs8, path)
    }

    fn from_pkcs8(pkcs8: Vec<u8>, path: &Path) -> anyhow::Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| anyhow::anyhow!("{} is not an Ed25519 PKCS#8 key", path.display()))?;
        let public_key = pair.public_key().as_ref().to_vec();
        // A stable id derived from the key, as JWKS consumers look keys up by `kid`.
        let key_id = URL_SAFE_NO_PAD.encode(&public_key[..12]);
        Ok(Self {
            pkcs8,
            public_key,
            key_id,
            path: path.to_owned(),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A token shaped like a Cognito access token for `sub`.
    pub fn mint(&self, sub: &str, username: &str, valid_for: Duration) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({
            "sub": sub,
            "iss": DEV_ISSUER,
            "client_id": DEV_CLIENT_ID,
            "token_use": "access",
            "scope": functions::jwt::REQUIRED_SCOPE,
            "username": username,
            "auth_time": now,
            "iat": now,
            "exp": now + valid_for.as_secs(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        self.sign(&claims)
    }

    /// Any claims, including ones `mint` never writes (tests of the rules sign those).
    pub(super) fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        let key = EncodingKey::from_ed_der(&self.pkcs8);
        Ok(jsonwebtoken::encode(&header, claims, &key)?)
    }

    /// The public key as a JWKS, as a user pool publishes at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![Jwk {
                common: CommonParameters {
                    public_key_use: Some(PublicKeyUse::Signature),
                    key_algorithm: Some(KeyAlgorithm::EdDSA),
                    key_id: Some(self.key_id.clone()),
                    ..CommonParameters::default()
                },
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: URL_SAFE_NO_PAD.encode(&self.public_key),
                }),
            }],
        }
    }
}

/// The key file's bytes, or why it must not be used: whoever can read it can mint tokens
/// every stack that trusts it accepts, for any user, so a file other users may read (or
/// write) is refused, as ssh refuses such a private key. The outer error is reading; the
/// inner one, the file's permissions.
#[cfg(unix)]
fn read_private(path: &Path) -> std::io::Result<anyhow::Result<Vec<u8>>> {
    use std::os::unix::fs::PermissionsExt;
    let file = std::fs::File::open(path)?;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Ok(Err(anyhow::anyhow!(
            "refusing the development key {path}: its permissions {mode:04o} let other users \
             read it, and whoever reads it can sign in as anyone on a stack that trusts it; \
             run `chmod 600 {path}` (or delete it: `cruddur dev` creates a new one, and \
             tokens minted with the old one stop working)",
            path = path.display()
        )));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut bytes)?;
    Ok(Ok(bytes))
}

#[cfg(not(unix))]
fn read_private(path: &Path) -> std::io::Result<anyhow::Result<Vec<u8>>> {
    std::fs::read(path).map(Ok)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut file, bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// What a local stack at `api_url` says about `signer`'s key, from the JWKS it publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackKeys {
    /// Nothing answers there: no stack is running (or it listens elsewhere).
    NoStack,
    /// The stack publishes this key: it accepts the signer's tokens.
    Trusted,
    /// The stack publishes other development keys.
    OtherKeys(Vec<String>),
    /// The stack publishes no development key: it verifies a user pool's tokens.
    UserPool,
}

/// Asks the stack at `api_url` (e.g. `http://127.0.0.1:4567`) which key it trusts.
pub async fn stack_keys(api_url: &str, signer: &DevSigner) -> anyhow::Result<StackKeys> {
    let url = format!("{}{JWKS_PATH}", api_url.trim_end_matches('/'));
    let keys = match fetch_jwks(&url).await {
        Ok(keys) => keys,
        Err(JwksFetchError::NoAnswer { .. }) => return Ok(StackKeys::NoStack),
        Err(JwksFetchError::Status { status, .. }) if status == hyper::StatusCode::NOT_FOUND => {
            return Ok(StackKeys::UserPool);
        }
        Err(error) => return Err(error.into()),
    };
    if keys.find(signer.key_id()).is_some() {
        return Ok(StackKeys::Trusted);
    }
    Ok(StackKeys::OtherKeys(
        keys.keys
            .iter()
            .filter_map(|key| key.common.key_id.clone())
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Authorizer;
    use crate::auth::tests::{Dir, bearer};

    #[tokio::test]
    async fn the_key_is_kept_between_runs() {
        let dir = Dir::new();
        let path = dir.path().join("nested/key.pk8");
        let first = DevSigner::load_or_create(&path).unwrap();
        let token = first.mint("sub-1", "a", Duration::from_secs(60)).unwrap();
        let second = DevSigner::load_or_create(&path).unwrap();
        assert_eq!(second.key_id(), first.key_id());
        let loaded = DevSigner::load(&path).unwrap();
        assert_eq!(loaded.key_id(), first.key_id());
        assert!(
            Authorizer::for_dev(&second)
                .verify(Some(&bearer(&token)))
                .await
                .is_ok()
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_key_file_other_users_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Dir::new();
        let path = dir.path().join("key.pk8");
        let created = DevSigner::load_or_create(&path).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "created private");
        for open in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).unwrap();
            for error in [
                DevSigner::load_or_create(&path).err(),
                DevSigner::load(&path).err(),
            ] {
                let message = format!("{:#}", error.expect("refused"));
                assert!(
                    message.contains(&format!("chmod 600 {}", path.display()))
                        && message.contains(&format!("{open:04o}")),
                    "{message}"
                );
            }
        }
        // Refused, not replaced: the key is still the one tokens were minted with.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(DevSigner::load(&path).unwrap().key_id(), created.key_id());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(DevSigner::load(&path).unwrap().key_id(), created.key_id());
    }

    #[test]
    fn minting_never_creates_a_key() {
        let dir = Dir::new();
        let path = dir.path().join("cruddur/dev-signing-key.pk8");
        let error = DevSigner::load(&path).err().expect("no key to load");
        let message = format!("{error:#}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("cruddur dev"), "{message}");
        assert!(!path.exists() && !path.parent().unwrap().exists());
    }

    #[test]
    fn the_development_key_lives_in_one_place_per_user_not_in_the_working_directory() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        assert_eq!(
            key_file_from(env(&[
                (DEV_KEY_FILE_ENV, "/keys/mine.pk8"),
                ("XDG_CONFIG_HOME", "/xdg"),
                ("HOME", "/home/me"),
            ])),
            Some(PathBuf::from("/keys/mine.pk8"))
        );
        assert_eq!(
            key_file_from(env(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/me")])),
            Some(PathBuf::from("/xdg/cruddur/dev-signing-key.pk8"))
        );
        // A relative XDG_CONFIG_HOME is invalid by the spec (and would depend on the cwd).
        for xdg in ["", "relative/dir"] {
            let vars: &'static [(&str, &str)] = if xdg.is_empty() {
                &[("XDG_CONFIG_HOME", ""), ("HOME", "/home/me")]
            } else {
                &[("XDG_CONFIG_HOME", "relative/dir"), ("HOME", "/home/me")]
            };
            assert_eq!(
                key_file_from(env(vars)),
                Some(PathBuf::from(
                    "/home/me/.config/cruddur/dev-signing-key.pk8"
                )),
                "XDG_CONFIG_HOME={xdg:?}"
            );
        }
        assert_eq!(key_file_from(env(&[])), None);
    }
}
