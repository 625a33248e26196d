//! Converting the frontend's planned steps into the engine's typed steps.
//!
//! A planned step whose words referred to variables the plan could not know
//! (the base image's environment) is expanded again here, from its raw form,
//! with the stage's real environment.

use super::step::{
    CommandForm, CopyFrom, CopyStep, HealthcheckSpec, HeredocBody, Instruction, MountSpec, RunStep,
    Step,
};
use berth_dockerfile::instruction::{self as fi, Command, Source};
use berth_dockerfile::plan;
use berth_dockerfile::shell::Lexer;
use std::collections::BTreeMap;

/// Errors converting a step.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ConvertError {
    /// The Dockerfile line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Resolves `--from` text to a stage index, by name or number, or an image.
pub fn resolve_from(text: &str, stage_names: &BTreeMap<String, usize>) -> CopyFrom {
    let lower = text.to_ascii_lowercase();
    if let Some(index) = stage_names.get(&lower) {
        return CopyFrom::Stage(*index);
    }
    match text.parse::<usize>() {
        Ok(i) => CopyFrom::Stage(i),
        Err(_) => CopyFrom::Image(text.to_string()),
    }
}

fn command(c: &Command) -> CommandForm {
    match c {
        Command::Exec(args) => CommandForm::Exec(args.clone()),
        Command::Shell(line) => CommandForm::Shell(line.clone()),
    }
}

/// Converts one planned step, given the stage's environment at that point
/// (`KEY=value`) and the stage names of the plan.
pub fn convert(
    step: &plan::Step,
    env: &[String],
    stage_names: &BTreeMap<String, usize>,
    escape: char,
) -> Result<Step, ConvertError> {
    let err = |message: String| ConvertError {
        line: step.start_line,
        message,
    };
    let instruction = if step.unresolved.is_empty() {
        step.instruction.clone()
    } else {
        // The environment the expansion sees: build args, then ENV (which wins).
        let mut vars: BTreeMap<String, String> = step.build_args.clone();
        for e in env {
            if let Some((k, v)) = e.split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
        }
        let lexer = Lexer::new(escape);
        step.raw
            .expand(&lexer, &vars)
            .map(|(i, _, _)| i)
            .map_err(|e| err(e.to_string()))?
    };
    let typed = match &instruction {
        fi::Instruction::From(_) => return Err(err("FROM inside a stage".into())),
        fi::Instruction::Arg(_) => Instruction::Arg,
        fi::Instruction::Env(kvs) => Instruction::Env(
            kvs.iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
        ),
        fi::Instruction::Label(kvs) => Instruction::Label(
            kvs.iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
        ),
        fi::Instruction::Cmd(c) => Instruction::Cmd(command(c)),
        fi::Instruction::Entrypoint(c) => Instruction::Entrypoint(command(c)),
        fi::Instruction::Workdir(d) => Instruction::Workdir(d.clone()),
        fi::Instruction::User(u) => Instruction::User(u.clone()),
        fi::Instruction::Expose(p) => Instruction::Expose(p.clone()),
        fi::Instruction::Volume(v) => Instruction::Volume(v.clone()),
        fi::Instruction::Shell(s) => Instruction::Shell(s.clone()),
        fi::Instruction::Stopsignal(s) => Instruction::StopSignal(s.clone()),
        fi::Instruction::Onbuild(t) => Instruction::OnBuild(t.clone()),
        fi::Instruction::Maintainer(m) => Instruction::Maintainer(m.clone()),
        fi::Instruction::Healthcheck(fi::Healthcheck::None) => Instruction::Healthcheck(None),
        fi::Instruction::Healthcheck(fi::Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        }) => Instruction::Healthcheck(Some(HealthcheckSpec {
            test: Some(command(test)),
            interval: interval.unwrap_or(0),
            timeout: timeout.unwrap_or(0),
            start_period: start_period.unwrap_or(0),
            start_interval: start_interval.unwrap_or(0),
            retries: u64::from(retries.unwrap_or(0)),
        })),
        fi::Instruction::Run(run) => Instruction::Run(RunStep {
            command: command(&run.command),
            heredocs: run
                .heredocs
                .iter()
                .map(|h| HeredocBody {
                    name: h.name.clone(),
                    content: h.content.clone(),
                })
                .collect(),
            mounts: run
                .mounts
                .iter()
                .map(|m| parse_mount(m, stage_names).map_err(&err))
                .collect::<Result<_, _>>()?,
            network: run
                .network
                .as_deref()
                .unwrap_or("default")
                .parse()
                .map_err(&err)?,
        }),
        fi::Instruction::Copy(t) => Instruction::Copy(transfer(t, false, stage_names)),
        fi::Instruction::Add(t) => Instruction::Copy(transfer(t, true, stage_names)),
    };
    Ok(Step {
        line: step.start_line,
        text: step.source.clone(),
        build_args: step.build_args.clone(),
        instruction: typed,
    })
}

fn transfer(t: &fi::Transfer, add: bool, stage_names: &BTreeMap<String, usize>) -> CopyStep {
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    for s in &t.sources {
        match s {
            Source::Path(p) => sources.push(p.clone()),
            Source::Heredoc { name, content, .. } => heredocs.push(HeredocBody {
                name: name.clone(),
                content: content.clone(),
            }),
        }
    }
    CopyStep {
        add: add && t.unpack != Some(false),
        sources,
        heredocs,
        dest: t.dest.clone(),
        from: t.from.as_deref().map(|f| resolve_from(f, stage_names)),
        chown: t.chown.clone(),
        chmod: t.chmod.clone(),
        link: t.link,
        excludes: t.exclude.clone(),
        parents: t.parents,
        checksum: t.checksum.clone(),
    }
}

/// Parses a `RUN --mount` value (`type=cache,target=/x,…`).
pub fn parse_mount(text: &str, stage_names: &BTreeMap<String, usize>) -> Result<MountSpec, String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, "true"));
        fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let flag = |names: &[&str]| {
        names
            .iter()
            .any(|n| fields.get(*n).is_some_and(|v| v == "true" || v == "1"))
    };
    let target = fields
        .get("target")
        .or_else(|| fields.get("dst"))
        .or_else(|| fields.get("destination"))
        .cloned();
    let kind = fields.get("type").map(String::as_str).unwrap_or("bind");
    let need_target = || {
        target
            .clone()
            .ok_or_else(|| format!("--mount={text}: target is required"))
    };
    let number = |name: &str, default: u32, radix: u32| -> Result<u32, String> {
        fields.get(name).map_or(Ok(default), |v| {
            u32::from_str_radix(v, radix).map_err(|_| format!("--mount={text}: bad {name} '{v}'"))
        })
    };
    Ok(match kind {
        "cache" => {
            let target = need_target()?;
            let sharing = fields
                .get("sharing")
                .map(String::as_str)
                .unwrap_or("shared");
            if !matches!(sharing, "shared" | "private" | "locked") {
                return Err(format!(
                    "--mount={text}: sharing must be shared, private or locked"
                ));
            }
            MountSpec::Cache {
                id: fields.get("id").cloned().unwrap_or_else(|| target.clone()),
                target,
                locked: sharing == "locked",
                private: sharing == "private",
                readonly: flag(&["ro", "readonly"]),
                mode: number("mode", 0o755, 8)?,
                uid: number("uid", 0, 10)?,
                gid: number("gid", 0, 10)?,
            }
        }
        "bind" => MountSpec::Bind {
            target: need_target()?,
            source: fields
                .get("source")
                .or_else(|| fields.get("src"))
                .cloned()
                .unwrap_or_default(),
            from: fields.get("from").map(|f| resolve_from(f, stage_names)),
            readwrite: flag(&["rw", "readwrite"]),
        },
        "tmpfs" => MountSpec::Tmpfs {
            target: need_target()?,
            size: fields
                .get("size")
                .map(|s| parse_size(s))
                .transpose()
                .map_err(|e| format!("--mount={text}: {e}"))?,
        },
        "secret" => {
            let id = fields.get("id").cloned().or_else(|| {
                target
                    .as_deref()
                    .and_then(|t| t.rsplit('/').next())
                    .map(str::to_string)
            });
            let id =
                id.ok_or_else(|| format!("--mount={text}: a secret needs an id or a target"))?;
            MountSpec::Secret {
                target: target.unwrap_or_else(|| format!("/run/secrets/{id}")),
                id,
                required: flag(&["required"]),
            }
        }
        other => return Err(format!("--mount={text}: unsupported mount type '{other}'")),
    })
}

/// Parses a byte size such as `64m`, `1g` or `1024`.
fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (digits, unit) = match trimmed.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => trimmed.split_at(i),
        None => (trimmed, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("bad size '{text}'"))?;
    let mult = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(format!("bad size '{text}'")),
    };
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_with_buildkit_defaults() {
        let names: BTreeMap<String, usize> = [("build".to_string(), 0)].into();
        assert_eq!(
            parse_mount("type=cache,target=/root/.cache,sharing=locked", &names).unwrap(),
            MountSpec::Cache {
                target: "/root/.cache".into(),
                id: "/root/.cache".into(),
                locked: true,
                private: false,
                readonly: false,
                mode: 0o755,
                uid: 0,
                gid: 0
            }
        );
        assert_eq!(
            parse_mount("target=/src,from=build,source=/out,rw", &names).unwrap(),
            MountSpec::Bind {
                target: "/src".into(),
                source: "/out".into(),
                from: Some(CopyFrom::Stage(0)),
                readwrite: true
            }
        );
        assert_eq!(
            parse_mount("type=secret,id=token", &names).unwrap(),
            MountSpec::Secret {
                id: "token".into(),
                target: "/run/secrets/token".into(),
                required: false
            }
        );
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,size=64m", &names).unwrap(),
            MountSpec::Tmpfs {
                target: "/t".into(),
                size: Some(64 << 20)
            }
        );
        assert!(parse_mount("type=cache", &names).is_err());
        assert!(parse_mount("type=volume,target=/x", &names).is_err());
    }
}
