//! Logging in and out: checking a credential against a registry and storing
//! it where Docker (and so this client's [`crate::auth`]) looks for it.
//!
//! The file is Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`). A credential goes to the credential helper the
//! file names for the registry (`credHelpers[key]`, else `credsStore`), through
//! the `docker-credential-<name> store|erase` protocol; otherwise it is written
//! base64-encoded under `auths[key].auth`. Every other key of the file is kept
//! as it was, the file is replaced atomically and is readable by its owner
//! only.

use crate::auth::{Credential, Credentials};
use crate::client::{Client, ClientOptions};
use crate::error::Error;
use crate::transport::{Call, status_error};
use base64::Engine as _;
use berth_store::reference;
use reqwest::{Method, StatusCode};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Docker Hub's key in `config.json`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The key a registry's credential is stored under, as Docker writes it:
/// Docker Hub (`docker.io`, `index.docker.io`, `registry-1.docker.io`, or
/// nothing) is [`DOCKER_HUB_KEY`]; other registries are `host[:port]`, with a
/// scheme and path the user typed removed.
pub fn server_key(registry: &str) -> String {
    let trimmed = registry.trim();
    let without_scheme = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme);
    match host {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_owned(),
        other => other.to_owned(),
    }
}

/// Docker's `config.json`: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".docker"))
        })?;
    Some(dir.join("config.json"))
}

/// Where a credential was stored or erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// In the `auths` section of this file.
    ConfigFile(PathBuf),
    /// Through the credential helper `docker-credential-<name>`.
    Helper(String),
}

impl std::fmt::Display for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stored::ConfigFile(path) => write!(f, "{}", path.display()),
            Stored::Helper(name) => write!(f, "the credential helper docker-credential-{name}"),
        }
    }
}

fn credentials_error(key: &str, message: String) -> Error {
    Error::Credentials {
        registry: key.to_owned(),
        message,
    }
}

/// Reads the file as a JSON object (an absent file is an empty one).
fn read_config(
    path: &Path,
    key: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(err) => {
            return Err(credentials_error(
                key,
                format!("reading {}: {err}", path.display()),
            ));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Default::default());
    }
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(credentials_error(
            key,
            format!("{} is not a JSON object", path.display()),
        )),
        Err(err) => Err(credentials_error(
            key,
            format!(
                "{} is not valid JSON: {err}\nhint: fix or remove the file",
                path.display()
            ),
        )),
    }
}

/// Replaces the file atomically (a sibling temporary file renamed over it),
/// readable and writable by its owner only.
fn write_config(
    path: &Path,
    key: &str,
    config: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let fail = |what: &str, target: &Path, err: std::io::Error| {
        credentials_error(key, format!("{what} {}: {err}", target.display()))
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| fail("creating", dir, err))?;
    let mut body = serde_json::to_vec_pretty(config)
        .map_err(|err| credentials_error(key, format!("encoding {}: {err}", path.display())))?;
    body.push(b'\n');
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config.json"),
        std::process::id()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(&body)?;
            file.sync_all()
        });
    if let Err(err) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail("writing", path, err));
    }
    Ok(())
}

/// The helper the file names for `key`: `credHelpers[key]`, else
/// `credsStore`.
fn helper_for(config: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    let named = |value: Option<&serde_json::Value>| {
        value
            .and_then(serde_json::Value::as_str)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
    };
    named(
        config
            .get("credHelpers")
            .and_then(|helpers| helpers.get(key)),
    )
    .or_else(|| named(config.get("credsStore")))
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
fn run_helper(helper: &str, action: &str, input: &[u8], key: &str) -> Result<String, Error> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| {
            credentials_error(
                key,
                format!(
                    "running {program} {action}: {err}\nhint: install {program} or remove it \
                     from credsStore/credHelpers in the Docker config"
                ),
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|err| credentials_error(key, format!("writing to {program}: {err}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|err| credentials_error(key, format!("waiting for {program}: {err}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let said = [stdout.as_str(), stderr.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(credentials_error(
            key,
            format!("{program} {action} failed ({}): {said}", output.status),
        ));
    }
    Ok(stdout)
}

/// Stores a username and password for the registry key `key` in the Docker
/// config at `config_path`, or in the credential helper it names.
pub fn save(
    config_path: &Path,
    key: &str,
    username: &str,
    password: &str,
) -> Result<Stored, Error> {
    let mut config = read_config(config_path, key)?;
    if let Some(helper) = helper_for(&config, key) {
        let input = serde_json::json!({
            "ServerURL": key,
            "Username": username,
            "Secret": password,
        });
        run_helper(&helper, "store", input.to_string().as_bytes(), key)?;
        // An old secret in the file would be read before the store's.
        if let Some(entry) = config
            .get_mut("auths")
            .and_then(serde_json::Value::as_object_mut)
            .and_then(|auths| auths.get_mut(key))
            .and_then(serde_json::Value::as_object_mut)
        {
            let had_secret = ["auth", "identitytoken", "password"]
                .iter()
                .any(|field| entry.remove(*field).is_some());
            if had_secret {
                write_config(config_path, key, &config)?;
            }
        }
        return Ok(Stored::Helper(helper));
    }
    let auths = config
        .entry("auths")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if !auths.is_object() {
        *auths = serde_json::Value::Object(Default::default());
    }
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    if let Some(auths) = auths.as_object_mut() {
        auths.insert(key.to_owned(), serde_json::json!({ "auth": encoded }));
    }
    write_config(config_path, key, &config)?;
    Ok(Stored::ConfigFile(config_path.to_owned()))
}

/// Removes the credential for `key`: from the credential helper the file
/// names for it, and from the file's `auths`. `None` when nothing was
/// stored.
pub fn erase(config_path: &Path, key: &str) -> Result<Option<Stored>, Error> {
    let mut config = read_config(config_path, key)?;
    let mut erased = None;
    if let Some(helper) = helper_for(&config, key) {
        // A helper that has nothing for the key says so with a failure; the
        // file may still hold an entry, so that is not an error yet.
        if run_helper(&helper, "erase", key.as_bytes(), key).is_ok() {
            erased = Some(Stored::Helper(helper));
        }
    }
    let removed = config
        .get_mut("auths")
        .and_then(serde_json::Value::as_object_mut)
        .and_then(|auths| auths.remove(key))
        .is_some();
    if removed {
        write_config(config_path, key, &config)?;
        erased = erased.or(Some(Stored::ConfigFile(config_path.to_owned())));
    }
    Ok(erased)
}

impl Client {
    /// Checks a username and password against a registry (`host[:port]` or
    /// Docker Hub's key) with `GET /v2/`, answering its challenge (Basic, or a
    /// bearer token from its token server) with them. Fails with
    /// [`Error::Unauthorized`] when they are refused.
    pub async fn check_login(
        options: ClientOptions,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<(), Error> {
        let host = match server_key(registry).as_str() {
            DOCKER_HUB_KEY => "docker.io".to_owned(),
            other => other.to_owned(),
        };
        // Any repository will do: it only picks the host, scheme and key.
        let probe = reference::parse(&format!("{host}/berth-login"))?;
        let client = Client::new(ClientOptions {
            credentials: Credentials::Fixed(Credential::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            }),
            ..options
        })?;
        let mut call = Call::new(
            Method::GET,
            format!("{}/v2/", client.base_url(&probe)),
            reference::api_host(&probe),
            reference::credential_key(&probe),
        );
        let url = call.url.clone();
        let sent = client
            .within(
                || format!("checking the login to {host}"),
                move || url,
                client.send(&mut call, &crate::progress::NoProgress),
            )
            .await?;
        match sent.response.status() {
            StatusCode::OK => Ok(()),
            _ => Err(status_error(&call, sent, &format!("registry {host}")).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_docker() {
        for (input, want) in [
            ("docker.io", DOCKER_HUB_KEY),
            ("index.docker.io", DOCKER_HUB_KEY),
            ("https://index.docker.io/v1/", DOCKER_HUB_KEY),
            ("registry-1.docker.io", DOCKER_HUB_KEY),
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("https://quay.io/", "quay.io"),
            ("http://reg.lan:5000/v2/", "reg.lan:5000"),
        ] {
            assert_eq!(server_key(input), want, "{input}");
        }
    }

    #[test]
    fn saving_keeps_other_keys_and_reads_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker").join("config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"psFormat":"table {{.ID}}","proxies":{"default":{}}}"#,
        )
        .unwrap();
        let stored = save(&path, "127.0.0.1:5000", "alice", "s3:cret").unwrap();
        assert_eq!(stored, Stored::ConfigFile(path.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["psFormat"], "table {{.ID}}");
        assert_eq!(value["auths"]["other:1"]["auth"], "eDp5");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let read = Credentials::FromFile(path.clone())
            .lookup("127.0.0.1:5000")
            .unwrap();
        assert_eq!(
            read,
            Credential::Basic {
                username: "alice".into(),
                password: "s3:cret".into()
            }
        );
        assert_eq!(
            erase(&path, "127.0.0.1:5000").unwrap(),
            Some(Stored::ConfigFile(path.clone()))
        );
        assert_eq!(erase(&path, "127.0.0.1:5000").unwrap(), None);
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(value["auths"]["other:1"]["auth"], "eDp5");
        assert!(value["auths"].get("127.0.0.1:5000").is_none());
    }

    #[test]
    fn a_broken_config_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = save(&path, "r:1", "u", "p").unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("not valid JSON"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
    }
}
