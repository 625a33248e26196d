//! Table tests of the planner.

use super::*;
use crate::instruction::Instruction;
use crate::parse;

fn plan_of(source: &str, options: &PlanOptions) -> Result<BuildPlan, PlanError> {
    let dockerfile = parse(source, "Dockerfile").unwrap();
    plan(&dockerfile, options)
}

fn options(args: &[(&str, &str)], target: Option<&str>) -> PlanOptions {
    PlanOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        target: target.map(str::to_string),
        target_platform: Some(Platform::parse("linux/arm64").unwrap()),
        build_platform: Some(Platform::parse("linux/amd64").unwrap()),
    }
}

fn workdirs(plan: &BuildPlan) -> Vec<String> {
    plan.stages
        .iter()
        .flat_map(|s| s.steps.iter())
        .filter_map(|step| match &step.instruction {
            Instruction::Workdir(dir) => Some(dir.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn arg_scoping_table() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        // A global ARG is visible in a stage only once redeclared.
        (
            "ARG V=g\nFROM a\nWORKDIR /$V\nARG V\nWORKDIR /$V\n",
            &[],
            &["/", "/g"],
        ),
        // A build arg overrides both the global and the stage default.
        (
            "ARG V=g\nFROM a\nARG V=s\nWORKDIR /$V\n",
            &[("V", "b")],
            &["/b"],
        ),
        ("ARG V=g\nFROM a\nARG V=s\nWORKDIR /$V\n", &[], &["/s"]),
        // ENV wins over an ARG of the same name.
        (
            "FROM a\nARG V=arg\nENV V=env\nWORKDIR /$V\n",
            &[],
            &["/env"],
        ),
        // Every value of one ENV line sees the environment before it.
        ("FROM a\nENV A=1\nENV A=2 B=$A\nWORKDIR /$B\n", &[], &["/1"]),
        // Platform args must be declared in a stage, without a value.
        (
            "FROM a\nWORKDIR /$TARGETARCH\nARG TARGETARCH\nARG BUILDOS\nWORKDIR /$TARGETARCH/$BUILDOS\n",
            &[],
            &["/", "/arm64/linux"],
        ),
        // A stage based on another inherits its ENV, not its ARGs.
        (
            "FROM a AS one\nARG X=x\nENV E=e\nFROM one\nWORKDIR /$E$X\n",
            &[],
            &["/e"],
        ),
        // ARG defaults expand earlier ARGs.
        ("FROM a\nARG A=1\nARG B=${A}2\nWORKDIR /$B\n", &[], &["/12"]),
    ];
    for (source, args, expected) in cases {
        let plan = plan_of(source, &options(args, None)).unwrap();
        assert_eq!(workdirs(&plan), *expected, "{source}");
    }
}

#[test]
fn from_uses_global_and_platform_args() {
    let plan = plan_of(
        "ARG TAG=1.0\nFROM --platform=$BUILDPLATFORM img:$TAG AS build\nFROM scratch\nCOPY --from=build /a /a\n",
        &options(&[("TAG", "2.0")], None),
    )
    .unwrap();
    assert_eq!(plan.stages.len(), 2);
    assert_eq!(
        plan.stages[0].base,
        Base::Image {
            reference: "img:2.0".into()
        }
    );
    assert_eq!(plan.stages[0].platform.to_string(), "linux/amd64");
    assert_eq!(plan.stages[1].platform.to_string(), "linux/arm64");
    assert_eq!(
        plan.stages[0]
            .from_build_args
            .get("TAG")
            .map(String::as_str),
        Some("2.0")
    );
    assert_eq!(plan.stages[1].base, Base::Scratch);
    assert_eq!(plan.global_args.get("TAG").map(String::as_str), Some("2.0"));
}

#[test]
fn steps_record_the_build_args_they_use() {
    let plan = plan_of(
        "FROM a\nARG A=1\nARG B=2\nWORKDIR /$A\nRUN make\nENV B=shadow\nRUN make\nUSER $HOME\n",
        &options(&[("http_proxy", "http://p")], None),
    )
    .unwrap();
    let steps = &plan.stages[0].steps;
    let args = |i: usize| -> Vec<(&str, &str)> {
        steps[i]
            .build_args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    };
    assert_eq!(args(2), [("A", "1")]);
    assert_eq!(
        args(3),
        [("A", "1"), ("B", "2"), ("http_proxy", "http://p")]
    );
    assert_eq!(args(5), [("A", "1"), ("http_proxy", "http://p")]);
    assert_eq!(steps[6].unresolved, ["HOME"]);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn target_pruning_table() {
    let source = "FROM a AS base\nFROM base AS dev\nFROM b AS tools\nFROM base AS final\nCOPY --from=tools /t /t\nFROM c AS unrelated\n";
    let cases: &[(Option<&str>, &[usize])] = &[
        (None, &[4]),
        (Some("final"), &[0, 2, 3]),
        (Some("FINAL"), &[0, 2, 3]),
        (Some("dev"), &[0, 1]),
        (Some("tools"), &[2]),
    ];
    for (target, expected) in cases {
        let plan = plan_of(source, &options(&[], *target)).unwrap();
        let got: Vec<usize> = plan.stages.iter().map(|s| s.index).collect();
        assert_eq!(got, *expected, "{target:?}");
    }
    let err = plan_of(source, &options(&[], Some("fnal"))).unwrap_err();
    let error = err.errors().next().unwrap();
    assert_eq!(error.message, "target stage \"fnal\" could not be found");
    assert_eq!(error.hint.as_deref(), Some("did you mean \"final\"?"));
}

#[test]
fn stage_graph_errors() {
    let cases = [
        (
            "FROM a AS x\nCOPY --from=y /a /a\nFROM b AS y\nCOPY --from=x /b /b\n",
            "circular dependency detected on stage: x",
        ),
        (
            "FROM a AS x\nCOPY --from=x /a /a\n",
            "circular dependency detected on stage: x",
        ),
        (
            "FROM a AS x\nRUN --mount=from=y,target=/y true\nFROM b AS y\nCOPY --from=0 /b /b\n",
            "circular dependency detected on stage: x",
        ),
        (
            "FROM a\nCOPY --from=3 /a /a\n",
            "invalid stage index 3: the Dockerfile has 1 stage(s)",
        ),
        ("FROM a AS x\nFROM b AS X\n", "duplicate stage name \"x\""),
        (
            "FROM a AS scratch\n",
            "\"scratch\" is a reserved name and cannot be used as a stage name",
        ),
        (
            "RUN true\nFROM a\n",
            "no build stage in current context: instructions other than ARG must come after a FROM",
        ),
        ("ARG A\n", "the Dockerfile has no FROM instruction"),
        ("FROM $NOPE\n", "base name ($NOPE) should not be blank"),
        (
            "FROM --platform=linux/ a\n",
            "failed to parse platform linux/: invalid platform \"linux/\": expected os/arch[/variant], e.g. linux/amd64",
        ),
        (
            "FROM a\nCOPY --from=$X /a /a\n",
            "variable expansion is not supported for --from; define a new stage with FROM using an ARG from the global scope instead",
        ),
    ];
    for (source, message) in cases {
        let err = plan_of(source, &options(&[], None)).unwrap_err();
        let messages: Vec<&str> = err.errors().map(|d| d.message.as_str()).collect();
        assert!(messages.contains(&message), "{source}: {messages:?}");
    }
    // COPY --from an image name is no dependency.
    let plan = plan_of("FROM a\nCOPY --from=alpine:3 /a /a\n", &options(&[], None)).unwrap();
    assert!(plan.stages[0].depends_on.is_empty());
}

#[test]
fn base_names_must_be_references_table() {
    let hex64 = "a".repeat(64);
    let long_path = format!("FROM a/{}\n", "b".repeat(254));
    let long_tag = format!("FROM alpine:{}\n", "t".repeat(129));
    let pinned = format!("FROM docker.io/library/alpine:3.20@sha256:{hex64}\n");
    let short_digest = format!("FROM alpine@sha256:{}\n", "a".repeat(63));
    let md5 = format!("FROM alpine@md5:{}\n", "a".repeat(32));
    let upper_digest = format!("FROM alpine@sha256:{}\n", "A".repeat(64));
    let identifier = format!("FROM {hex64}\n");
    let identifier_error = format!(
        "failed to parse stage name \"{hex64}\": invalid repository name ({hex64}), cannot specify 64-byte hexadecimal strings"
    );
    let cases: &[(&str, Option<&str>)] = &[
        ("FROM alpine\n", None),
        ("FROM alpine:3.20\n", None),
        (&pinned, None),
        ("FROM localhost:5000/team/app:v1.0_RC-2\n", None),
        ("FROM [::1]:5000/app\n", None),
        ("FROM index.docker.io/library/alpine\n", None),
        // An uppercase first component is a registry host, so it is valid.
        ("FROM MyRegistry/app\n", None),
        ("FROM a--b__c.d/e_f\n", None),
        ("FROM scratch\n", None),
        ("FROM a AS build\nFROM build\n", None),
        ("ARG V=3.20\nFROM alpine:$V\n", None),
        // An ARG without a default expands to nothing when no build arg is given.
        (
            "ARG V\nFROM alpine:$V\n",
            Some("failed to parse stage name \"alpine:\": invalid reference format"),
        ),
        (
            "ARG V\nFROM python:${V}-slim\n",
            Some("failed to parse stage name \"python:-slim\": invalid reference format"),
        ),
        (
            "ARG REG=registry.example.com/\nFROM ${REG}/app\n",
            Some(
                "failed to parse stage name \"registry.example.com//app\": invalid reference format",
            ),
        ),
        (
            "FROM Alpine\n",
            Some(
                "failed to parse stage name \"Alpine\": invalid reference format: repository name (library/Alpine) must be lowercase",
            ),
        ),
        // `scratch` and stage names count only as written, as in BuildKit.
        (
            "FROM SCRATCH\n",
            Some(
                "failed to parse stage name \"SCRATCH\": invalid reference format: repository name (library/SCRATCH) must be lowercase",
            ),
        ),
        (
            "FROM a AS build\nFROM Build\n",
            Some(
                "failed to parse stage name \"Build\": invalid reference format: repository name (library/Build) must be lowercase",
            ),
        ),
        (
            "FROM -alpine\n",
            Some("failed to parse stage name \"-alpine\": invalid reference format"),
        ),
        (
            "FROM a-/b\n",
            Some("failed to parse stage name \"a-/b\": invalid reference format"),
        ),
        (
            "FROM alpine@sha256:abc\n",
            Some("failed to parse stage name \"alpine@sha256:abc\": invalid reference format"),
        ),
        (&long_tag, Some("invalid reference format")),
        (
            &long_path,
            Some("repository name must not be more than 255 characters"),
        ),
        (&short_digest, Some("invalid checksum digest length")),
        (&md5, Some("unsupported digest algorithm")),
        (&upper_digest, Some("invalid checksum digest format")),
        (&identifier, Some(&identifier_error)),
    ];
    for (source, expected) in cases {
        let result = plan_of(source, &options(&[], None));
        match expected {
            None => assert!(result.is_ok(), "{source}: {result:?}"),
            Some(expected) => {
                let err = result.unwrap_err();
                let messages: Vec<&str> = err.errors().map(|d| d.message.as_str()).collect();
                assert_eq!(messages.len(), 1, "{source}: {messages:?}");
                assert!(messages[0].ends_with(expected), "{source}: {messages:?}");
                assert!(
                    messages[0].starts_with("failed to parse stage name "),
                    "{source}: {messages:?}"
                );
            }
        }
    }
    // A build arg can make the reference valid.
    let plan = plan_of(
        "ARG V\nFROM python:${V}-slim\n",
        &options(&[("V", "3.12")], None),
    )
    .unwrap();
    assert_eq!(
        plan.stages[0].base,
        Base::Image {
            reference: "python:3.12-slim".into()
        }
    );
}

#[test]
fn invalid_default_arg_in_from_table() {
    // (Dockerfile, build args, whether BuildKit's InvalidDefaultArgInFrom fires.)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
    let cases: &[Case] = &[
        ("ARG V\nFROM alpine:$V\n", &[("V", "3.20")], true),
        ("ARG V=3.20\nFROM alpine:$V\n", &[("V", "3.21")], false),
        ("ARG IMAGE\nFROM $IMAGE\n", &[("IMAGE", "alpine")], true),
        ("ARG IMAGE=alpine\nFROM $IMAGE AS b\nFROM b\n", &[], false),
        ("ARG T=Latest\nFROM alpine:$T\n", &[], false),
        // An expansion error stops the check, as in BuildKit.
        ("ARG V\nFROM alpine:${V:?}\n", &[("V", "3.20")], false),
    ];
    for (source, args, fires) in cases {
        let plan = plan_of(source, &options(args, None)).unwrap();
        let found: Vec<&Diagnostic> = plan
            .warnings
            .iter()
            .filter(|d| d.rule.as_deref() == Some("InvalidDefaultArgInFrom"))
            .collect();
        assert_eq!(found.len(), usize::from(*fires), "{source}: {found:?}");
        if let Some(warning) = found.first() {
            let base = source.lines().nth(1).unwrap().trim_start_matches("FROM ");
            assert_eq!(
                warning.message,
                format!("default value for ARG {base} results in empty or invalid base image name")
            );
        }
    }
    // Without build args the same Dockerfile is an error too, as in BuildKit.
    let err = plan_of("ARG V\nFROM alpine:$V\n", &options(&[], None)).unwrap_err();
    let rules: Vec<Option<&str>> = err.diagnostics.iter().map(|d| d.rule.as_deref()).collect();
    assert_eq!(rules, [Some("InvalidDefaultArgInFrom"), None]);
}

#[test]
fn run_flags_are_checked_in_every_stage() {
    // Unreachable stages are checked too, as `docker build --check` does.
    let err = plan_of(
        "FROM a AS unused\nRUN --network=bridge true\nRUN --mount=type=bind,target=/t,z true\nFROM b\nRUN\n",
        &options(&[], None),
    )
    .unwrap_err();
    let errors: Vec<(usize, &str)> = err
        .errors()
        .map(|d| (d.start_line, d.message.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (
                2,
                "invalid network mode \"bridge\" (RUN --network takes default, none, host)"
            ),
            (3, "invalid field 'z' must be a key=value pair"),
        ]
    );
}

#[test]
fn every_error_is_reported() {
    let err = plan_of(
        "FROM a\nCOPY a\nWORKDIR --x=1 /\nHEALTHCHECK FOO\n",
        &options(&[], None),
    )
    .unwrap_err();
    let lines: Vec<usize> = err.errors().map(|d| d.start_line).collect();
    assert_eq!(lines, [2, 3, 4]);
}

#[test]
fn entrypoint_cmd_interplay_table() {
    let exec = |args: &[&str]| Some(args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let inherited = Process {
        entrypoint: exec(&["/base-ep"]),
        cmd: exec(&["base-cmd"]),
    };
    let cases: &[(&str, Process)] = &[
        ("", inherited.clone()),
        (
            "CMD [\"c\"]\n",
            Process {
                entrypoint: exec(&["/base-ep"]),
                cmd: exec(&["c"]),
            },
        ),
        (
            "ENTRYPOINT [\"e\"]\n",
            Process {
                entrypoint: exec(&["e"]),
                cmd: None,
            },
        ),
        (
            "CMD [\"c\"]\nENTRYPOINT [\"e\"]\n",
            Process {
                entrypoint: exec(&["e"]),
                cmd: exec(&["c"]),
            },
        ),
        (
            "ENTRYPOINT [\"e\"]\nCMD [\"c\"]\n",
            Process {
                entrypoint: exec(&["e"]),
                cmd: exec(&["c"]),
            },
        ),
        (
            "ENTRYPOINT e x\n",
            Process {
                entrypoint: exec(&["/bin/sh", "-c", "e x"]),
                cmd: None,
            },
        ),
        (
            "SHELL [\"bash\", \"-ec\"]\nCMD c\n",
            Process {
                entrypoint: exec(&["/base-ep"]),
                cmd: exec(&["bash", "-ec", "c"]),
            },
        ),
    ];
    for (body, expected) in cases {
        let plan = plan_of(&format!("FROM a\n{body}"), &options(&[], None)).unwrap();
        assert_eq!(plan.stages[0].process(&inherited), *expected, "{body}");
    }
}

#[test]
fn lint_table() {
    let cases: &[(&str, &[&str])] = &[
        (
            "FROM a\nENV A 1\nLABEL b c\n",
            &["LegacyKeyValueFormat", "LegacyKeyValueFormat"],
        ),
        ("FROM a\nENV A=1\nLABEL b=c\n", &[]),
        (
            "FROM --platform=$TARGETPLATFORM a\n",
            &["RedundantTargetPlatform"],
        ),
        ("FROM --platform=$BUILDPLATFORM a\n", &[]),
        (
            "FROM a\nARG DB_PASSWORD\nENV API_TOKEN=x\n",
            &["SecretsUsedInArgOrEnv", "SecretsUsedInArgOrEnv"],
        ),
        ("FROM a\nARG PUBLIC_KEY\n", &[]),
        (
            "FROM a\nrun true\nRUN true\n",
            &["ConsistentInstructionCasing"],
        ),
        (
            "from a\nrun true\nRUN true\n",
            &["ConsistentInstructionCasing"],
        ),
        ("from a\nrun true\n", &[]),
        ("FROM a\nRun true\n", &["ConsistentInstructionCasing"]),
    ];
    for (source, expected) in cases {
        let plan = plan_of(source, &options(&[], None)).unwrap();
        let rules: Vec<&str> = plan
            .warnings
            .iter()
            .filter_map(|d| d.rule.as_deref())
            .collect();
        assert_eq!(rules, *expected, "{source}");
    }
}

#[test]
fn warnings_and_check_directive() {
    let source =
        "FROM a as Build\nMAINTAINER me\nCMD run\nCMD [\"x\"]\nWORKDIR rel\nFROM $UNDECLARED\n";
    let err = plan_of(source, &options(&[], None)).unwrap_err();
    let rules: Vec<&str> = err
        .diagnostics
        .iter()
        .filter_map(|d| d.rule.as_deref())
        .collect();
    assert_eq!(
        rules,
        [
            "FromAsCasing",
            "StageNameCasing",
            "MaintainerDeprecated",
            "JSONArgsRecommended",
            "MultipleInstructionsDisallowed",
            "WorkdirRelativePath",
            "InvalidDefaultArgInFrom",
            "UndefinedArgInFrom"
        ]
    );
    let plan = plan_of(
        "FROM a\nMAINTAINER me\n",
        &options(
            &[
                ("UNUSED", "1"),
                ("SOURCE_DATE_EPOCH", "0"),
                ("BUILDKIT_INLINE_CACHE", "1"),
                ("HTTP_PROXY", "x"),
            ],
            None,
        ),
    )
    .unwrap();
    let rules: Vec<&str> = plan
        .warnings
        .iter()
        .filter_map(|d| d.rule.as_deref())
        .collect();
    assert_eq!(rules, ["MaintainerDeprecated", "UnusedBuildArg"]);
    assert_eq!(
        plan.warnings[1].message,
        "one or more build args were not consumed: UNUSED"
    );
    let plan = plan_of(
        "# check=skip=MaintainerDeprecated\nFROM a\nMAINTAINER me\n",
        &options(&[], None),
    )
    .unwrap();
    assert!(plan.warnings.is_empty());
    let err = plan_of(
        "# check=error=true\nFROM a\nMAINTAINER me\n",
        &options(&[], None),
    )
    .unwrap_err();
    assert_eq!(err.errors().count(), 1);
}

#[test]
fn plan_is_serialisable() {
    let plan = plan_of(
        "FROM a\nCOPY <<EOF /x\nhi\nEOF\nRUN [\"true\"]\n",
        &options(&[], None),
    )
    .unwrap();
    let json = serde_json::to_string(&plan).unwrap();
    let back: BuildPlan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
}
