//! Metadata instructions applied to the image configuration.

use super::step::{CommandForm, Instruction};
use berth_store::oci::{EmptyObject, Healthcheck, ImageConfig};

/// The shell used for shell-form commands when `SHELL` was not given.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The stage's shell.
pub fn shell(config: &ImageConfig) -> Vec<String> {
    config
        .config
        .shell
        .clone()
        .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
}

/// A command as the argv it runs: shell form goes through the stage's shell.
pub fn argv(config: &ImageConfig, form: &CommandForm) -> Vec<String> {
    match form {
        CommandForm::Exec(args) => args.clone(),
        CommandForm::Shell(line) => {
            let mut argv = shell(config);
            argv.push(line.clone());
            argv
        }
    }
}

/// Sets `KEY=value` in an environment list, replacing an earlier value.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let prefix = format!("{key}=");
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.starts_with(&prefix)) {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// Looks a variable up in an environment list.
pub fn get_env<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|e| e.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

/// Applies a metadata instruction; returns false for filesystem instructions,
/// which the engine handles.
pub fn apply(config: &mut ImageConfig, instruction: &Instruction) -> bool {
    let c = &mut config.config;
    match instruction {
        Instruction::Env(pairs) => {
            for (k, v) in pairs {
                set_env(&mut c.env, k, v);
            }
        }
        Instruction::Label(pairs) => {
            for (k, v) in pairs {
                c.labels.insert(k.clone(), v.clone());
            }
        }
        Instruction::Cmd(form) => {
            let argv = argv(config, form);
            config.config.cmd = Some(argv);
        }
        Instruction::Entrypoint(form) => {
            let argv = argv(config, form);
            // Docker: a new ENTRYPOINT resets the CMD inherited from the base.
            config.config.entrypoint = Some(argv);
            config.config.cmd = None;
        }
        Instruction::Workdir(dir) => {
            let current = c.working_dir.clone().unwrap_or_else(|| "/".into());
            c.working_dir = Some(resolve_path(&current, dir));
        }
        Instruction::User(user) => c.user = Some(user.clone()),
        Instruction::Expose(ports) => {
            for port in ports {
                let key = if port.contains('/') {
                    port.to_lowercase()
                } else {
                    format!("{port}/tcp")
                };
                c.exposed_ports.insert(key, EmptyObject {});
            }
        }
        Instruction::Volume(paths) => {
            for p in paths {
                c.volumes.insert(p.clone(), EmptyObject {});
            }
        }
        Instruction::StopSignal(signal) => c.stop_signal = Some(signal.clone()),
        Instruction::Healthcheck(None) => {
            c.healthcheck = Some(Healthcheck {
                test: vec!["NONE".into()],
                ..Default::default()
            });
        }
        Instruction::Healthcheck(Some(spec)) => {
            let test = match &spec.test {
                Some(CommandForm::Exec(args)) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(args.iter().cloned());
                    t
                }
                Some(CommandForm::Shell(line)) => vec!["CMD-SHELL".into(), line.clone()],
                None => vec!["NONE".into()],
            };
            c.healthcheck = Some(Healthcheck {
                test,
                interval: spec.interval,
                timeout: spec.timeout,
                start_period: spec.start_period,
                start_interval: spec.start_interval,
                retries: spec.retries,
            });
        }
        Instruction::Shell(shell) => c.shell = Some(shell.clone()),
        Instruction::OnBuild(trigger) => c
            .on_build
            .get_or_insert_with(Vec::new)
            .push(trigger.clone()),
        Instruction::Maintainer(author) => config.author = Some(author.clone()),
        Instruction::Arg => {}
        Instruction::Run(_) | Instruction::Copy(_) => return false,
    }
    true
}

/// Resolves `path` against the directory `base`, lexically (`..` and `.`
/// handled), giving an absolute path.
pub fn resolve_path(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_resets_inherited_cmd_and_shell_form_uses_shell() {
        let mut config = ImageConfig::default();
        config.config.cmd = Some(vec!["sh".into()]);
        apply(
            &mut config,
            &Instruction::Shell(vec!["/bin/ash".into(), "-eo".into()]),
        );
        apply(
            &mut config,
            &Instruction::Entrypoint(CommandForm::Shell("run me".into())),
        );
        assert_eq!(config.config.cmd, None);
        assert_eq!(
            config.config.entrypoint,
            Some(vec!["/bin/ash".into(), "-eo".into(), "run me".into()])
        );
        apply(
            &mut config,
            &Instruction::Cmd(CommandForm::Exec(vec!["--flag".into()])),
        );
        assert_eq!(config.config.cmd, Some(vec!["--flag".into()]));
    }

    #[test]
    fn env_workdir_expose_and_healthcheck_fill_docker_fields() {
        let mut config = ImageConfig::default();
        for i in [
            Instruction::Env(vec![("A".into(), "1".into()), ("B".into(), "2".into())]),
            Instruction::Env(vec![("A".into(), "3".into())]),
            Instruction::Workdir("/app".into()),
            Instruction::Workdir("sub/../src".into()),
            Instruction::Expose(vec!["80".into(), "53/UDP".into()]),
            Instruction::Healthcheck(Some(super::super::step::HealthcheckSpec {
                test: Some(CommandForm::Shell("true".into())),
                interval: 5_000_000_000,
                ..Default::default()
            })),
        ] {
            assert!(apply(&mut config, &i));
        }
        assert_eq!(config.config.env, ["A=3", "B=2"]);
        assert_eq!(config.config.working_dir.as_deref(), Some("/app/src"));
        let ports: Vec<&String> = config.config.exposed_ports.keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        let hc = config.config.healthcheck.unwrap();
        assert_eq!(hc.test, ["CMD-SHELL", "true"]);
        assert_eq!(hc.interval, 5_000_000_000);
    }

    #[test]
    fn resolve_path_is_lexical() {
        for (base, path, want) in [
            ("/", "app", "/app"),
            ("/app", "../etc/./x", "/etc/x"),
            ("/app", "/abs/", "/abs"),
            ("/", "../..", "/"),
        ] {
            assert_eq!(resolve_path(base, path), want);
        }
    }
}
