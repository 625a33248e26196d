//! Cache keys: a step's key is the digest of its parent's key, the normalised
//! instruction, the build args it used, and the digests of its other inputs
//! (the selected files of a `COPY`). A change anywhere in that chain changes
//! every later key, so a miss invalidates exactly the steps that depend on it.
//!
//! Keys are shared between machines through remote caches (`--cache-to`,
//! `--cache-from`), so they hold content only: no absolute context path, no
//! store root, no host name, no file times or inode numbers. The instruction
//! goes in through [`normalize`], an explicit encoding of every field, rather
//! than a type's `Debug` text, which may change with the compiler or a field's
//! name.

use super::step::{
    CommandForm, CopyFrom, CopyStep, HealthcheckSpec, HeredocBody, Instruction, MountSpec, RunStep,
};
use berth_containers::executor::Network;
use berth_store::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Bumped when the meaning of a key changes, so old records are not reused.
/// Remote caches carry it too: a cache written with another version is
/// ignored rather than trusted.
pub const VERSION: &str = "berth-cache-v2";

/// The key of a base: scratch, an image pinned by manifest digest, or a stage.
pub fn base_key(kind: &str, pin: &str, platform: &str) -> Digest {
    let mut h = Sha256::new();
    h.update(format!("{VERSION}\nbase\n{kind}\n{pin}\n{platform}\n"));
    Digest::from_hasher(h)
}

/// The key of a step.
pub fn step_key(
    parent: Option<&Digest>,
    instruction: &str,
    build_args: &BTreeMap<String, String>,
    inputs: &[String],
) -> Digest {
    let mut h = Sha256::new();
    h.update(VERSION.as_bytes());
    h.update(b"\nparent\n");
    // `COPY --link` steps have no parent in their key: their layer does not
    // depend on what lies below.
    h.update(
        parent
            .map(Digest::as_str)
            .unwrap_or("independent")
            .as_bytes(),
    );
    h.update(b"\ninstruction\n");
    h.update((instruction.len() as u64).to_le_bytes());
    h.update(instruction.as_bytes());
    h.update(b"\nargs\n");
    for (k, v) in build_args {
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    h.update(b"\ninputs\n");
    for input in inputs {
        h.update((input.len() as u64).to_le_bytes());
        h.update(input.as_bytes());
    }
    Digest::from_hasher(h)
}

/// The stable text of an instruction for its key: a tag per instruction and
/// each field as `name=<length>:<value>`, so no two instructions share a text.
pub fn normalize(instruction: &Instruction) -> String {
    let mut e = Encoder::default();
    match instruction {
        Instruction::Env(pairs) => e.tag("ENV").pairs("var", pairs),
        Instruction::Label(pairs) => e.tag("LABEL").pairs("label", pairs),
        Instruction::Cmd(command) => e.tag("CMD").command(command),
        Instruction::Entrypoint(command) => e.tag("ENTRYPOINT").command(command),
        Instruction::Workdir(dir) => e.tag("WORKDIR").field("dir", dir),
        Instruction::User(user) => e.tag("USER").field("user", user),
        Instruction::Expose(ports) => e.tag("EXPOSE").list("port", ports),
        Instruction::Volume(paths) => e.tag("VOLUME").list("path", paths),
        Instruction::StopSignal(signal) => e.tag("STOPSIGNAL").field("signal", signal),
        Instruction::Healthcheck(None) => e.tag("HEALTHCHECK").field("none", ""),
        Instruction::Healthcheck(Some(spec)) => {
            let HealthcheckSpec {
                test,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            } = spec;
            e.tag("HEALTHCHECK");
            if let Some(test) = test {
                e.command(test);
            }
            e.number("interval", *interval)
                .number("timeout", *timeout)
                .number("start-period", *start_period)
                .number("start-interval", *start_interval)
                .number("retries", *retries)
        }
        Instruction::Shell(words) => e.tag("SHELL").list("word", words),
        Instruction::OnBuild(trigger) => e.tag("ONBUILD").field("trigger", trigger),
        Instruction::Maintainer(name) => e.tag("MAINTAINER").field("name", name),
        Instruction::Arg => e.tag("ARG"),
        Instruction::Run(run) => e.run(run),
        Instruction::Copy(copy) => e.copy(copy),
    };
    e.text
}

/// Builds the text [`normalize`] returns. Every struct is destructured in
/// full, so a new field fails to compile until it is part of the key.
#[derive(Default)]
struct Encoder {
    text: String,
}

impl Encoder {
    fn tag(&mut self, tag: &str) -> &mut Self {
        self.text.push_str(tag);
        self.text.push('\n');
        self
    }

    fn field(&mut self, name: &str, value: &str) -> &mut Self {
        let _ = writeln!(self.text, "{name}={}:{value}", value.len());
        self
    }

    fn number(&mut self, name: &str, value: u64) -> &mut Self {
        self.field(name, &value.to_string())
    }

    fn flag(&mut self, name: &str, value: bool) -> &mut Self {
        self.field(name, if value { "1" } else { "0" })
    }

    fn list(&mut self, name: &str, values: &[String]) -> &mut Self {
        self.number(name, values.len() as u64);
        for value in values {
            self.field(name, value);
        }
        self
    }

    fn pairs(&mut self, name: &str, pairs: &[(String, String)]) -> &mut Self {
        self.number(name, pairs.len() as u64);
        for (k, v) in pairs {
            self.field(name, k).field("=", v);
        }
        self
    }

    fn command(&mut self, command: &CommandForm) -> &mut Self {
        match command {
            CommandForm::Shell(text) => self.field("shell", text),
            CommandForm::Exec(words) => self.list("exec", words),
        }
    }

    fn heredocs(&mut self, heredocs: &[HeredocBody]) -> &mut Self {
        self.number("heredocs", heredocs.len() as u64);
        for HeredocBody { name, content } in heredocs {
            self.field("heredoc", name).field("content", content);
        }
        self
    }

    fn from(&mut self, from: Option<&CopyFrom>) -> &mut Self {
        match from {
            None => self.field("from", ""),
            Some(CopyFrom::Stage(index)) => self.number("from-stage", *index as u64),
            Some(CopyFrom::Image(name)) => self.field("from-image", name),
        }
    }

    fn run(&mut self, run: &RunStep) -> &mut Self {
        let RunStep {
            command,
            heredocs,
            mounts,
            network,
        } = run;
        self.tag("RUN").command(command).heredocs(heredocs);
        self.field(
            "network",
            match network {
                Network::Default => "default",
                Network::None => "none",
                Network::Host => "host",
            },
        );
        self.number("mounts", mounts.len() as u64);
        for mount in mounts {
            self.mount(mount);
        }
        self
    }

    fn mount(&mut self, mount: &MountSpec) -> &mut Self {
        match mount {
            MountSpec::Cache {
                target,
                id,
                locked,
                private,
                readonly,
                mode,
                uid,
                gid,
            } => self
                .field("mount", "cache")
                .field("target", target)
                .field("id", id)
                .flag("locked", *locked)
                .flag("private", *private)
                .flag("readonly", *readonly)
                .number("mode", u64::from(*mode))
                .number("uid", u64::from(*uid))
                .number("gid", u64::from(*gid)),
            MountSpec::Bind {
                target,
                source,
                from,
                readwrite,
            } => self
                .field("mount", "bind")
                .field("target", target)
                .field("source", source)
                .from(from.as_ref())
                .flag("rw", *readwrite),
            MountSpec::Tmpfs { target, size } => {
                self.field("mount", "tmpfs").field("target", target);
                match size {
                    Some(size) => self.number("size", *size),
                    None => self.field("size", ""),
                }
            }
            MountSpec::Secret {
                id,
                target,
                required,
            } => self
                .field("mount", "secret")
                .field("id", id)
                .field("target", target)
                .flag("required", *required),
        }
    }

    fn copy(&mut self, copy: &CopyStep) -> &mut Self {
        let CopyStep {
            add,
            sources,
            heredocs,
            dest,
            from,
            chown,
            chmod,
            link,
            excludes,
            parents,
            checksum,
        } = copy;
        self.tag(if *add { "ADD" } else { "COPY" })
            .list("source", sources)
            .heredocs(heredocs)
            .field("dest", dest)
            .from(from.as_ref())
            .field("chown", chown.as_deref().unwrap_or(""))
            .flag("has-chown", chown.is_some())
            .field("chmod", chmod.as_deref().unwrap_or(""))
            .flag("has-chmod", chmod.is_some())
            .flag("link", *link)
            .list("exclude", excludes)
            .flag("parents", *parents)
            .field("checksum", checksum.as_deref().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_a_key_matters() {
        let parent = base_key("scratch", "", "linux/amd64");
        let args: BTreeMap<String, String> = [("V".to_string(), "1".to_string())].into();
        let base = step_key(Some(&parent), "RUN make", &args, &["x".into()]);
        assert_eq!(
            base,
            step_key(Some(&parent), "RUN make", &args, &["x".into()])
        );
        let other_parent = base_key("image", "sha256:00", "linux/amd64");
        let other_args: BTreeMap<String, String> = [("V".to_string(), "2".to_string())].into();
        for different in [
            step_key(Some(&other_parent), "RUN make", &args, &["x".into()]),
            step_key(None, "RUN make", &args, &["x".into()]),
            step_key(Some(&parent), "RUN make all", &args, &["x".into()]),
            step_key(Some(&parent), "RUN make", &other_args, &["x".into()]),
            step_key(Some(&parent), "RUN make", &args, &["y".into()]),
            // Boundaries are length-prefixed: moving bytes between parts differs.
            step_key(
                Some(&parent),
                "RUN make",
                &args,
                &["x".into(), String::new()],
            ),
        ] {
            assert_ne!(base, different);
        }
    }

    #[test]
    fn normalized_instructions_are_stable_and_distinct() {
        let run = |command: &str| {
            Instruction::Run(RunStep {
                command: CommandForm::Shell(command.into()),
                heredocs: Vec::new(),
                mounts: Vec::new(),
                network: Network::Default,
            })
        };
        // The encoding is part of the cache format shared between machines:
        // this text must only change together with VERSION.
        assert_eq!(
            normalize(&run("make")),
            "RUN\nshell=4:make\nheredocs=1:0\nnetwork=7:default\nmounts=1:0\n"
        );
        let copy = |sources: &[&str], dest: &str| {
            Instruction::Copy(CopyStep {
                sources: sources.iter().map(|s| s.to_string()).collect(),
                dest: dest.into(),
                ..Default::default()
            })
        };
        let distinct = [
            normalize(&run("make")),
            normalize(&run("make all")),
            normalize(&Instruction::Cmd(CommandForm::Shell("make".into()))),
            normalize(&Instruction::Cmd(CommandForm::Exec(vec!["make".into()]))),
            normalize(&copy(&["a", "b"], "/d")),
            normalize(&copy(&["a"], "b/d")),
            normalize(&Instruction::Copy(CopyStep {
                add: true,
                sources: vec!["a".into(), "b".into()],
                dest: "/d".into(),
                ..Default::default()
            })),
            normalize(&Instruction::Env(vec![("A".into(), "1=B".into())])),
            normalize(&Instruction::Env(vec![("A=1".into(), "B".into())])),
            normalize(&Instruction::Healthcheck(None)),
            normalize(&Instruction::Healthcheck(Some(HealthcheckSpec::default()))),
        ];
        for (i, a) in distinct.iter().enumerate() {
            for b in &distinct[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
