//! Authentication: where credentials come from, `WWW-Authenticate` challenges,
//! and bearer tokens cached per registry and scope until they expire.

use crate::error::Error;
use base64::Engine as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: anonymous access (still gets anonymous bearer tokens).
    Anonymous,
    /// A username and password, sent as HTTP Basic (to the registry or to its
    /// token server).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An identity (refresh) token from `docker login`, exchanged at the token
    /// server with an OAuth2 `refresh_token` grant.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach logs.
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

/// Where the client finds credentials.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// Docker's `config.json` (`$DOCKER_CONFIG` or `~/.docker`: `auths`,
    /// `credHelpers`, `credsStore`), then podman's `auth.json`
    /// (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`); anonymous
    /// when neither has an entry for the registry.
    #[default]
    FromConfig,
    /// A specific Docker-format `config.json` or podman `auth.json` file.
    FromFile(PathBuf),
    /// The same credential for every registry.
    Fixed(Credential),
}

impl Credentials {
    /// Looks up the credential for a registry, by its `config.json` key
    /// (`host[:port]`, or Docker Hub's legacy URL). This may run a credential
    /// helper program, so it blocks.
    pub fn lookup(&self, key: &str) -> Result<Credential, Error> {
        use docker_credential::CredentialRetrievalError as E;
        let found = match self {
            Credentials::Fixed(credential) => return Ok(credential.clone()),
            Credentials::FromFile(path) => {
                let file = std::fs::File::open(path).map_err(|err| Error::Credentials {
                    registry: key.to_owned(),
                    message: format!("opening {}: {err}", path.display()),
                })?;
                docker_credential::get_credential_from_reader(std::io::BufReader::new(file), key)
            }
            Credentials::FromConfig => match docker_credential::get_credential(key) {
                Err(E::NoCredentialConfigured | E::ConfigNotFound | E::ConfigReadError) => {
                    docker_credential::get_podman_credential(key)
                }
                other => other,
            },
        };
        match found {
            Ok(docker_credential::DockerCredential::UsernamePassword(username, password)) => {
                Ok(Credential::Basic { username, password })
            }
            Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
                Ok(Credential::IdentityToken(token))
            }
            // No file or no entry: anonymous, like docker and skopeo.
            Err(E::NoCredentialConfigured | E::ConfigNotFound) => Ok(Credential::Anonymous),
            // A credential helper that has nothing for this registry says so
            // by failing with this message (the protocol's "not found").
            Err(E::HelperFailure { stdout, stderr, .. })
                if format!("{stdout}{stderr}").contains("credentials not found") =>
            {
                Ok(Credential::Anonymous)
            }
            Err(E::ConfigReadError) if matches!(self, Credentials::FromConfig) => {
                Ok(Credential::Anonymous)
            }
            Err(err) => Err(Error::Credentials {
                registry: key.to_owned(),
                message: err.to_string(),
            }),
        }
    }
}

/// The value of an `Authorization: Basic` header.
pub(crate) fn basic_header(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// HTTP Basic.
    Basic,
    /// Bearer tokens from `realm`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The service parameter to pass to it.
        service: Option<String>,
    },
}

/// Parses the scheme and parameters of a `WWW-Authenticate` header, e.g.
/// `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        })
    } else {
        None
    }
}

/// Splits `key="value", key2=value2` respecting quotes (scopes contain commas).
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    other => value.push(other),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    params
}

/// A token endpoint's answer.
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long to keep it. Tokens are dropped a little early so
    /// that one never expires in flight; the default lifetime is the 60 s the
    /// token specification prescribes.
    pub fn into_token(self) -> Option<(String, Duration)> {
        let token = self.token.or(self.access_token)?;
        let lifetime = self.expires_in.unwrap_or(60).max(10);
        Some((token, Duration::from_secs(lifetime - lifetime / 10)))
    }
}

/// What the client knows about authenticating to one registry.
#[derive(Debug, Default)]
pub(crate) struct HostAuth {
    /// The credential, once looked up.
    pub credential: Option<Credential>,
    /// The last challenge seen.
    pub challenge: Option<Challenge>,
    /// Bearer tokens by scope set, with their expiry.
    pub tokens: HashMap<String, (String, Instant)>,
}

impl HostAuth {
    /// The Authorization header to send for these scopes, if one is known.
    pub fn header_for(&self, scope_key: &str) -> Option<String> {
        match self.challenge.as_ref()? {
            Challenge::Basic => match self.credential.as_ref()? {
                Credential::Basic { username, password } => Some(basic_header(username, password)),
                _ => None,
            },
            Challenge::Bearer { .. } => {
                let (token, expiry) = self.tokens.get(scope_key)?;
                (Instant::now() < *expiry).then(|| format!("Bearer {token}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let cases = [
            (
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
                Some(Challenge::Bearer {
                    realm: "https://auth.example/token".into(),
                    service: Some("registry.example".into()),
                }),
            ),
            (r#"Basic realm="Registry Realm""#, Some(Challenge::Basic)),
            (
                r#"bearer realm=http://127.0.0.1:1/t"#,
                Some(Challenge::Bearer {
                    realm: "http://127.0.0.1:1/t".into(),
                    service: None,
                }),
            ),
            ("Bearer service=x", None),
            ("Negotiate abc", None),
        ];
        for (header, expected) in cases {
            assert_eq!(parse_challenge(header), expected, "{header}");
        }
    }

    #[test]
    fn credentials_come_from_a_docker_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"identitytoken":"tok"}}}}}}"#),
        )
        .unwrap();
        let source = Credentials::FromFile(path);
        assert_eq!(
            source.lookup("127.0.0.1:5000").unwrap(),
            Credential::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            }
        );
        assert_eq!(
            source.lookup("https://index.docker.io/v1/").unwrap(),
            Credential::IdentityToken("tok".into())
        );
        assert_eq!(source.lookup("other:1").unwrap(), Credential::Anonymous);
        let missing = Credentials::FromFile(dir.path().join("nope.json"));
        assert!(
            missing
                .lookup("x")
                .unwrap_err()
                .to_string()
                .contains("nope.json")
        );
    }

    #[test]
    fn token_lifetime_defaults_and_margin() {
        let response: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(
            response.into_token(),
            Some(("a".into(), Duration::from_secs(54)))
        );
        let none: TokenResponse = serde_json::from_str("{}").unwrap();
        assert!(none.into_token().is_none());
    }
}
