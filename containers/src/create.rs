//! Creating a container: its record, and the OCI bundle made from the image
//! and the options of `berth run` ([`super::options`]), with Docker's rules
//! for the environment, user, working directory, hostname and mounts.

use super::lookup::mkdir_in_root;
use super::options::{RunOptions, Volume, command_line, environment, parse_volume};
use super::{ContainerError, ContainerRecord, State, cio, container_dir, names};
use crate::executor::config::{self, BundleConfig, BundleMount, Network};
use crate::executor::{mount, user};
use berth_store::image::{self, ImageError, StoredImage};
use berth_store::layer::extract;
use berth_store::{Store, StoreError, tmp};
use std::fs;
use std::path::Path;

/// The contents of the container's `/etc/hosts`: loopback names and the
/// container's hostname, as Docker writes them.
fn hosts_file(hostname: &str, network: Network) -> String {
    let mut text = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    if network != Network::None
        && let Ok(host) = fs::read_to_string("/etc/hosts")
    {
        // With the host's network the host's names resolve too.
        for line in host.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') && !text.contains(line) {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text.push_str(&format!("127.0.1.1\t{hostname}\n"));
    text
}

/// Fetches an image the local store lacks. The containers crate knows no
/// registry: the caller wires one in (the CLI pulls with the registry
/// client), or refuses.
pub trait ImageFetcher {
    /// Fetches `name` into `store`, tagged as `local` (the store's form of
    /// the name). Called only for a name the store lacks.
    fn fetch(
        &self,
        store: &Store,
        name: &str,
        local: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// An [`ImageFetcher`] that fetches nothing: images must be in the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalOnly;

impl ImageFetcher for LocalOnly {
    fn fetch(
        &self,
        _store: &Store,
        name: &str,
        _local: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("image '{name}' is not in the local store").into())
    }
}

/// Loads `name`, fetching it first when the store lacks it. `scratch` is
/// never fetched.
fn load_or_fetch(
    store: &Store,
    name: &str,
    fetcher: &dyn ImageFetcher,
) -> Result<StoredImage, ContainerError> {
    match image::load(store, name) {
        Err(ImageError::Store(StoreError::UnknownImage(local))) if name != "scratch" => {
            fetcher
                .fetch(store, name, &local)
                .map_err(|source| ContainerError::Fetch {
                    image: name.to_string(),
                    source,
                })?;
            Ok(image::load(store, name)?)
        }
        other => Ok(other?),
    }
}

/// Creates a container from `options`: its record and its bundle, ready for
/// the runtime's `create`. The store lease is held until the record names
/// the image, so `prune` and `rmi` cannot take its layers in between. On an
/// error nothing is left behind.
pub fn create(
    store: &Store,
    options: &RunOptions,
    fetcher: &dyn ImageFetcher,
) -> Result<ContainerRecord, ContainerError> {
    if let Some(name) = &options.name {
        names::validate(name)?;
    }
    let volumes = options
        .volumes
        .iter()
        .map(|spec| {
            let volume = parse_volume(spec)?;
            if fs::symlink_metadata(&volume.host).is_err() {
                return Err(ContainerError::MissingHostPath {
                    spec: spec.clone(),
                    path: volume.host,
                });
            }
            Ok(volume)
        })
        .collect::<Result<Vec<_>, _>>()?;
    for flag in &options.env {
        if flag.is_empty() || flag.starts_with('=') {
            return Err(ContainerError::InvalidEnv(flag.clone()));
        }
    }
    if let Some(dir) = &options.workdir
        && !dir.starts_with('/')
    {
        return Err(ContainerError::Start {
            message: format!("the working directory '{dir}' is invalid: it must be absolute"),
            code: 125,
        });
    }

    let mut limits = options.resources.clone();
    limits.validate(options.auto_remove, crate::resources::Host::detect())?;

    let _lease = store.lease()?;
    let image = load_or_fetch(store, &options.image, fetcher)?;
    let run_config = &image.config.config;
    let command = command_line(
        run_config.entrypoint.as_deref(),
        run_config.cmd.as_deref(),
        options.entrypoint.as_deref(),
        &options.command,
    );
    if command.is_empty() {
        return Err(ContainerError::NoCommand(options.image.clone()));
    }

    let id = names::new_id().map_err(cio("reading", Path::new("/dev/urandom")))?;
    let dir = container_dir(store, &id);
    let record = {
        let _names = names_lock_and_dir(store, &dir)?;
        let existing = super::list(store)?;
        let name = match &options.name {
            Some(name) => {
                if let Some(other) = existing.iter().find(|r| &r.name == name) {
                    return Err(ContainerError::NameInUse {
                        name: name.clone(),
                        id: other.id.clone(),
                    });
                }
                name.clone()
            }
            None => (0..)
                .map(|attempt| names::made_up(&id, attempt))
                .find(|n| !existing.iter().any(|r| &r.name == n))
                .unwrap_or_else(|| id.clone()),
        };
        fs::create_dir(&dir).map_err(cio("creating", &dir))?;
        let record = ContainerRecord {
            id: id.clone(),
            image: options.image.clone(),
            image_digest: image.descriptor.digest.clone(),
            name,
            command,
            created: super::now(),
            runtime: options.runtime.clone(),
            auto_remove: options.auto_remove,
            stop_signal: run_config.stop_signal.clone(),
            detached: options.detached,
            state: State::Created,
            resources: limits.resources.clone(),
            restart_policy: limits.restart,
            restart_count: 0,
        };
        if let Err(e) = super::save(store, &record) {
            let _ = tmp::remove_tree(&dir);
            return Err(e);
        }
        record
    };
    match build_bundle(store, &image, options, &record, &volumes) {
        Ok(()) => Ok(record),
        Err(e) => {
            let _ = tmp::remove_tree(&dir);
            Err(e)
        }
    }
}

/// Takes the names lock, making sure the containers directory exists.
fn names_lock_and_dir(
    store: &Store,
    dir: &Path,
) -> Result<berth_store::lock::FileLock, ContainerError> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(cio("creating", parent))?;
    }
    super::names_lock(store)
}

/// Mounts the root filesystem and writes the files of the bundle.
fn build_bundle(
    store: &Store,
    image: &StoredImage,
    options: &RunOptions,
    record: &ContainerRecord,
    volumes: &[Volume],
) -> Result<(), ContainerError> {
    let dir = container_dir(store, &record.id);
    let mut lowers = Vec::new();
    for layer in image.layers().iter().rev() {
        lowers.push(extract::ensure_snapshot(
            store,
            &layer.descriptor.digest,
            &layer.diff_id,
        )?);
    }
    if lowers.is_empty() {
        lowers.push(store.empty_dir()?);
    }
    let (upper, work, rootfs) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &rootfs, &dir.join("runtime")] {
        fs::create_dir_all(d).map_err(cio("creating", d))?;
    }
    mount::mount_overlay(&rootfs, &lowers, Some((&upper, &work))).map_err(|source| {
        crate::executor::ExecError::Mount {
            path: rootfs.clone(),
            source,
        }
    })?;

    let run_config = &image.config.config;
    let user_spec = options
        .user
        .clone()
        .or_else(|| run_config.user.clone())
        .unwrap_or_default();
    let user = user::resolve(&rootfs, &user_spec).map_err(crate::executor::ExecError::from)?;
    let workdir = options
        .workdir
        .clone()
        .or_else(|| run_config.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    mkdir_in_root(&rootfs, Path::new(&workdir))
        .map_err(cio("creating the working directory", Path::new(&workdir)))?;
    let hostname = options
        .hostname
        .clone()
        .unwrap_or_else(|| record.short_id().to_string());
    let env = environment(
        &run_config.env,
        &options.env,
        &hostname,
        options.tty,
        &user.home,
        |key| std::env::var(key).ok(),
    )?;

    let hosts = dir.join("hosts");
    fs::write(&hosts, hosts_file(&hostname, options.network)).map_err(cio("writing", &hosts))?;
    let hostname_file = dir.join("hostname");
    fs::write(&hostname_file, format!("{hostname}\n")).map_err(cio("writing", &hostname_file))?;
    let resolv = dir.join("resolv.conf");
    let resolv_text = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    fs::write(&resolv, resolv_text).map_err(cio("writing", &resolv))?;

    let mut mounts = config::container_mounts();
    for (file, dest) in [
        (&hosts, "/etc/hosts"),
        (&hostname_file, "/etc/hostname"),
        (&resolv, "/etc/resolv.conf"),
    ] {
        mounts.push(BundleMount::bind(&file.to_string_lossy(), dest, false));
    }
    for volume in volumes {
        mounts.push(BundleMount::bind(
            &volume.host.to_string_lossy(),
            &volume.container,
            volume.readonly,
        ));
    }
    let spec = config::render_json(
        &BundleConfig {
            args: &record.command,
            env: &env,
            cwd: &workdir,
            user: &user,
            network: options.network,
            mounts: &mounts,
            hostname: &hostname,
            terminal: options.tty,
            nofile: Some(config::default_nofile()),
        },
        &options.seccomp,
    )
    .map_err(crate::executor::ExecError::from)?;
    let config_path = dir.join("config.json");
    let spec = crate::resources::apply_to_config(&spec, &record.resources)
        .map_err(|e| cio("rendering", &config_path)(std::io::Error::other(e)))?;
    fs::write(&config_path, spec).map_err(cio("writing", &config_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_name_the_container_and_keep_the_hosts_names_on_its_network() {
        let none = hosts_file("box", Network::None);
        assert!(none.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(none.ends_with("127.0.1.1\tbox\n"));
        let host = hosts_file("box", Network::Host);
        let host_lines = fs::read_to_string("/etc/hosts").unwrap_or_default();
        for line in host_lines.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                assert!(host.contains(line), "{line}");
            }
        }
        assert!(host.ends_with("127.0.1.1\tbox\n"));
    }

    #[test]
    fn mkdir_in_root_stays_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        mkdir_in_root(&root, Path::new("/escape/app/data")).unwrap();
        assert!(
            root.join(outside.strip_prefix("/").unwrap())
                .join("app/data")
                .is_dir()
        );
        assert!(!outside.join("app").exists());
        mkdir_in_root(&root, Path::new("/srv/www")).unwrap();
        assert!(root.join("srv/www").is_dir());
    }
}
