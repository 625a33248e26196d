//! `--change` of `berth commit` and `berth import`: Dockerfile instructions
//! applied to an image configuration, parsed by the Dockerfile frontend and
//! applied by the engine's metadata rules, so they mean what they mean in a
//! Dockerfile.

use crate::engine::metadata;
use crate::engine::step::{CommandForm, Instruction};
use berth_dockerfile::instruction::{self as fi, Command};
use berth_dockerfile::shell::Lexer;
use berth_store::oci::ImageConfig;
use std::collections::BTreeMap;

/// The instructions docker accepts in `--change`.
pub const ALLOWED: [&str; 10] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
];

/// Why a `--change` value cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The text is not one Dockerfile instruction.
    #[error("dockerfile parse error in change '{change}': {message}")]
    Parse {
        /// The `--change` value.
        change: String,
        /// What the frontend said.
        message: String,
    },
    /// The instruction is not one docker allows in `--change`.
    #[error("{keyword} is not a valid change command")]
    NotAllowed {
        /// The keyword, upper case.
        keyword: String,
    },
}

/// Parses one `--change` value into the engine's typed instruction. Variables
/// are expanded in `env` (`KEY=value`, the image's environment), as a
/// Dockerfile step would expand them.
pub fn parse(change: &str, env: &[String]) -> Result<Instruction, ChangeError> {
    let parse_err = |message: String| ChangeError::Parse {
        change: change.to_string(),
        message,
    };
    // An empty text gets this message, not the parser's hint about FROM.
    if change.trim().is_empty() {
        return Err(parse_err("expected exactly one instruction".to_string()));
    }
    let dockerfile =
        berth_dockerfile::parse(change, "--change").map_err(|d| parse_err(d.to_string()))?;
    let [node] = dockerfile.nodes.as_slice() else {
        return Err(parse_err("expected exactly one instruction".to_string()));
    };
    let keyword = node.keyword.to_ascii_uppercase();
    if !ALLOWED.contains(&keyword.as_str()) {
        return Err(ChangeError::NotAllowed { keyword });
    }
    let typed = fi::Instruction::from_node(node).map_err(|e| parse_err(e.message))?;
    let vars: BTreeMap<String, String> = env
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (typed, _, _) = typed
        .expand(&Lexer::new(dockerfile.escape), &vars)
        .map_err(|e| parse_err(e.to_string()))?;
    let command = |c: &Command| match c {
        Command::Exec(args) => CommandForm::Exec(args.clone()),
        Command::Shell(line) => CommandForm::Shell(line.clone()),
    };
    let pairs = |kvs: &[fi::KeyValue]| {
        kvs.iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect()
    };
    Ok(match &typed {
        fi::Instruction::Cmd(c) => Instruction::Cmd(command(c)),
        fi::Instruction::Entrypoint(c) => Instruction::Entrypoint(command(c)),
        fi::Instruction::Env(kvs) => Instruction::Env(pairs(kvs)),
        fi::Instruction::Label(kvs) => Instruction::Label(pairs(kvs)),
        fi::Instruction::Expose(ports) => Instruction::Expose(ports.clone()),
        fi::Instruction::Onbuild(trigger) => Instruction::OnBuild(trigger.clone()),
        fi::Instruction::User(user) => Instruction::User(user.clone()),
        fi::Instruction::Volume(paths) => Instruction::Volume(paths.clone()),
        fi::Instruction::Workdir(dir) => Instruction::Workdir(dir.clone()),
        fi::Instruction::Stopsignal(signal) => Instruction::StopSignal(signal.clone()),
        _ => return Err(ChangeError::NotAllowed { keyword }),
    })
}

/// Applies every `--change` value to `config`, in order.
pub fn apply_all(config: &mut ImageConfig, changes: &[String]) -> Result<(), ChangeError> {
    for change in changes {
        let instruction = parse(change, &config.config.env)?;
        metadata::apply(config, &instruction);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> ImageConfig {
        let mut config = ImageConfig::default();
        config.config.env = vec!["BASE=/opt".into()];
        config.config.cmd = Some(vec!["sh".into()]);
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_all(&mut config, &changes).unwrap();
        config
    }

    #[test]
    fn changes_mean_what_they_mean_in_a_dockerfile() {
        let c = applied(&[
            "ENV A=1 B=\"two words\"",
            "ENV P=$BASE/bin",
            "LABEL team=db",
            "EXPOSE 80 53/UDP",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN echo hi",
            "CMD [\"echo\", \"hi\"]",
        ]);
        let r = &c.config;
        assert_eq!(r.env, ["BASE=/opt", "A=1", "B=two words", "P=/opt/bin"]);
        assert_eq!(r.labels.get("team").map(String::as_str), Some("db"));
        assert_eq!(
            r.exposed_ports.keys().collect::<Vec<_>>(),
            ["53/udp", "80/tcp"]
        );
        assert_eq!(r.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(r.user.as_deref(), Some("1000:1000"));
        assert!(r.volumes.contains_key("/data"));
        assert_eq!(r.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(
            r.on_build.as_deref(),
            Some(&["RUN echo hi".to_string()][..])
        );
        assert_eq!(
            r.cmd.as_deref(),
            Some(&["echo".to_string(), "hi".into()][..])
        );
    }

    #[test]
    fn shell_form_cmd_and_entrypoint_reset() {
        let c = applied(&["ENTRYPOINT top -b"]);
        assert_eq!(
            c.config.entrypoint.as_deref(),
            Some(&["/bin/sh".to_string(), "-c".into(), "top -b".into()][..])
        );
        // As in a Dockerfile, a new ENTRYPOINT drops the inherited CMD.
        assert_eq!(c.config.cmd, None);
    }

    #[test]
    fn refused_changes_name_the_instruction() {
        let cases: [(&str, &str); 6] = [
            ("RUN rm -rf /", "RUN is not a valid change command"),
            ("COPY a /b", "COPY is not a valid change command"),
            ("FROM busybox", "FROM is not a valid change command"),
            ("from busybox", "FROM is not a valid change command"),
            ("", "expected exactly one instruction"),
            ("CMD a\nCMD b", "expected exactly one instruction"),
        ];
        for (change, want) in cases {
            let err = parse(change, &[]).unwrap_err().to_string();
            assert!(err.contains(want), "{change:?}: {err}");
        }
    }
}
