//! `berth build` end to end: an image built with every metadata instruction
//! has Docker's config fields and a history entry per step, and it runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::require;
use build_common::{BuildEnv, layers};
use serde_json::json;

#[test]
fn config_fields_history_and_the_image_runs() {
    let env = BuildEnv::new();
    env.write("greeting.txt", "hello from the context\n");
    env.write(
        "Dockerfile",
        r#"FROM busybox
LABEL org.example.team=builders version="1.0"
ENV APP_HOME=/srv/app GREETING="hi there"
WORKDIR $APP_HOME
COPY greeting.txt .
RUN echo "built in $(pwd) for $GREETING" > built.txt
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=3 CMD cat built.txt
USER nobody
SHELL ["/bin/sh", "-c"]
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /srv/app/greeting.txt /srv/app/built.txt"]
"#,
    );
    let (digest, progress) = env.build_ok(&["-t", "meta"]);
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(progress.contains("RUN echo"), "{progress}");

    let config = env.config_of("meta");
    let c = &config["config"];
    assert_eq!(
        c["Labels"],
        json!({"org.example.team": "builders", "version": "1.0"})
    );
    let envs: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        envs.contains(&"APP_HOME=/srv/app") && envs.contains(&"GREETING=hi there"),
        "{envs:?}"
    );
    assert!(
        envs.iter().any(|e| e.starts_with("PATH=")),
        "the base's PATH is inherited: {envs:?}"
    );
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["ExposedPorts"], json!({"53/udp": {}, "8080/tcp": {}}));
    assert_eq!(c["Volumes"], json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(
        c["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "cat built.txt"], "Interval": 5_000_000_000u64, "Retries": 3})
    );
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["Shell"], json!(["/bin/sh", "-c"]));
    assert_eq!(c["OnBuild"], json!(["RUN echo child"]));
    assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c"]));
    assert_eq!(
        c["Cmd"],
        json!(["cat /srv/app/greeting.txt /srv/app/built.txt"])
    );

    // One history entry per step after the base's; only COPY and RUN add layers.
    let history = config["history"].as_array().unwrap();
    let ours: Vec<(&str, bool)> = history[1..]
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(ours.len(), 14, "{ours:?}");
    assert_eq!(
        ours.iter().filter(|(_, empty)| !empty).count(),
        2,
        "{ours:?}"
    );
    assert!(
        ours[3].0.starts_with("COPY greeting.txt") && !ours[3].1,
        "{ours:?}"
    );
    assert!(ours[4].0.starts_with("RUN echo") && !ours[4].1, "{ours:?}");
    let manifest = env.manifest_of("meta");
    assert_eq!(layers(&manifest).len(), 3);
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    let output = env.run_image("meta:latest");
    assert_eq!(
        output,
        "hello from the context\nbuilt in /srv/app for hi there\n"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_build() {
    let env = BuildEnv::new();
    env.write(
        "Dockerfile",
        "FROM busybox\nARG V=1\nONBUILD RUN echo triggered > /onbuild.txt\n",
    );
    env.build_ok(&["-t", "parent"]);
    let config = env.config_of("parent");
    let created_by: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .collect();
    assert!(
        created_by.contains(&"ARG V=1"),
        "ARG has a history entry: {created_by:?}"
    );
    env.write(
        "Dockerfile",
        "FROM parent\nCMD [\"cat\", \"/onbuild.txt\"]\n",
    );
    env.build_ok(&["-t", "child"]);
    assert_eq!(env.run_image("child:latest"), "triggered\n");
    assert_eq!(
        env.config_of("child")["config"].get("OnBuild"),
        None,
        "triggers are not inherited"
    );
}

#[test]
fn run_steps_work_with_runc_too() {
    let mut env = BuildEnv::new();
    env.runtime = require::program("runc", "runc");
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo via-runc > /r.txt\nCMD [\"cat\", \"/r.txt\"]\n",
    );
    let (_, progress) = env.build_ok(&["-t", "r"]);
    assert!(progress.contains("RUN echo via-runc"), "{progress}");
    assert_eq!(env.run_image("r:latest"), "via-runc\n");
}
