//! A token server like Docker Hub's auth service, for registries started with
//! [`Auth::Token`](crate::registry::Auth::Token): it checks Basic credentials
//! (or an OAuth2 refresh token) and issues ES256-signed JWTs granting the
//! requested scopes, signed by a certificate it writes for the registry.

use crate::http::{self, Body, full};
use base64::Engine as _;
use hyper::{Request, Response, StatusCode};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The service name the tokens carry (the registry's `auth.token.service`).
pub const SERVICE: &str = "berth-test-registry";
/// The issuer the tokens carry (the registry's `auth.token.issuer`).
pub const ISSUER: &str = "berth-test-issuer";
/// The identity (refresh) token the server accepts, as `docker login`
/// would have stored it.
pub const REFRESH_TOKEN: &str = "berth-refresh-token";

/// A running token server; dropping it stops it.
pub struct TokenServer {
    /// The token endpoint, for the registry's `realm`.
    pub realm: String,
    /// The PEM certificate whose key signs the tokens, for the registry's
    /// `rootcertbundle`.
    pub cert_bundle: PathBuf,
    /// How many tokens were issued so far.
    pub issued: Arc<AtomicUsize>,
    _server: http::Server,
}

struct Signer {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    rng: ring::rand::SystemRandom,
    user: String,
    password: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    fn token(&self, scopes: &[String]) -> String {
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.cert_der)],
        });
        let access: Vec<_> = scopes
            .iter()
            .filter_map(|scope| {
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": self.user, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", scopes.len()), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header).unwrap()),
            b64(&serde_json::to_vec(&claims).unwrap())
        );
        let signature = self.key.sign(&self.rng, signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", b64(signature.as_ref()))
    }

    fn authorised(&self, header: Option<&str>) -> bool {
        let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
            return false;
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_default();
        decoded == format!("{}:{}", self.user, self.password).into_bytes()
    }
}

/// Answers a token request: GET with Basic credentials, or an OAuth2
/// refresh-token grant POSTed as a form (what identity tokens use).
async fn answer(
    signer: &Signer,
    counter: &AtomicUsize,
    request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    use http_body_util::BodyExt as _;
    let refused = || {
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .body(full(&b"{\"details\":\"wrong credentials\"}"[..]))
            .unwrap()
    };
    let (params, oauth) = if request.method() == hyper::Method::POST {
        let body = request.into_body().collect().await.unwrap().to_bytes();
        (String::from_utf8(body.to_vec()).unwrap(), true)
    } else {
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if !signer.authorised(authorization) {
            return refused();
        }
        (request.uri().query().unwrap_or_default().to_owned(), false)
    };
    let url = reqwest::Url::parse(&format!("http://x/?{params}")).unwrap();
    let param = |name: &str| {
        url.query_pairs()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .collect::<Vec<_>>()
    };
    if oauth
        && (param("grant_type") != ["refresh_token"] || param("refresh_token") != [REFRESH_TOKEN])
    {
        return refused();
    }
    let scopes: Vec<String> = param("scope")
        .iter()
        .flat_map(|v| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    counter.fetch_add(1, Ordering::SeqCst);
    let token = signer.token(&scopes);
    let body = if oauth {
        serde_json::json!({"access_token": token, "expires_in": 300})
    } else {
        serde_json::json!({"token": token, "expires_in": 300})
    };
    Response::new(full(body.to_string()))
}

/// Starts a token server that accepts `user`/`password`; its certificate is
/// written into `dir`.
pub async fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let key_pair = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
    let params = rcgen::CertificateParams::new(vec!["berth-token-issuer".to_owned()]).unwrap();
    let cert = params.self_signed(&key_pair).unwrap();
    let cert_bundle = dir.join("token-ca.pem");
    std::fs::write(&cert_bundle, cert.pem()).unwrap();
    let signer = Arc::new(Signer {
        key,
        cert_der: cert.der().to_vec(),
        rng,
        user: user.to_owned(),
        password: password.to_owned(),
    });
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&issued);
    let server = http::Server::start(move |request| {
        let (signer, counter) = (Arc::clone(&signer), Arc::clone(&counter));
        async move { answer(&signer, &counter, request).await }
    })
    .await;
    TokenServer {
        realm: format!("{}/token", server.url()),
        cert_bundle,
        issued,
        _server: server,
    }
}
