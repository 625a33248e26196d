//! Heredoc cases: the table of BuildKit's `TestParseExtractsHeredoc` (the
//! same Dockerfile and the heredocs each instruction must carry), plus what
//! typed instructions make of them.

// Test helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_dockerfile::instruction::{Command, Instruction, Source};
use berth_dockerfile::parse;

const DOCKERFILE: &str = "
FROM alpine:3.6

ENV NAME=me

RUN ls

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN \"<<NOHEREDOC\"

RUN <<INDENT
\tfoo
\tbar
INDENT

RUN <<-UNINDENT
\tbaz
\tquux
UNINDENT

RUN <<-UNINDENT2
\tbaz
\tquux
\tUNINDENT2

RUN <<-EXPAND
\texpand $NAME
EXPAND

RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND

RUN <<COPY
echo hello world
echo foo bar
COPY

RUN <<COMMENT
# internal comment
echo hello world
echo foo bar # trailing comment
COMMENT

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<EOF /quotes
\"foo\"
'bar'
EOF

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<COMPLEX python3
print('hello world')
COMPLEX

COPY <<file.txt /dest
hello world
file.txt

RUN <<eo'f'
echo foo
eof

RUN <<eo\\'f
echo foo
eo'f

RUN <<'e'o\\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF
EOF

RUN <<  EOF  > foo
EOF
\t";

/// (name, content, expand, chomp, file descriptor)
type Expected = &'static [(&'static str, &'static str, bool, bool, u32)];

const EXPECTED: &[Expected] = &[
    &[],                               // ENV NAME=me
    &[],                               // RUN ls
    &[],                               // USER <<INVALID
    &[],                               // INVALID
    &[("EMPTY", "", true, false, 0)],  // RUN <<EMPTY
    &[("EMPTY2", "", true, false, 3)], // RUN 3<<EMPTY2
    &[],                               // RUN "<<NOHEREDOC"
    &[("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
    &[("UNINDENT", "\tbaz\n\tquux\n", true, true, 0)],
    &[("UNINDENT2", "\tbaz\n\tquux\n", true, true, 0)],
    &[("EXPAND", "\texpand $NAME\n", true, true, 0)],
    &[("NOEXPAND", "\tdon't expand $NAME\n", false, true, 0)],
    &[("COPY", "echo hello world\necho foo bar\n", true, false, 0)],
    &[(
        "COMMENT",
        "# internal comment\necho hello world\necho foo bar # trailing comment\n",
        true,
        false,
        0,
    )],
    &[("MOUNT", "echo hello\n", true, false, 0)],
    &[
        ("FILE1", "content 1\n", true, false, 0),
        ("FILE2", "content 2\n", true, false, 0),
    ],
    &[("EOF", "\"foo\"\n'bar'\n", true, false, 0)],
    &[("X", "Y\n", true, false, 0), ("Y", "X\n", true, false, 0)],
    &[("COMPLEX", "print('hello world')\n", true, false, 0)],
    &[("file.txt", "hello world\n", true, false, 0)],
    &[("eof", "echo foo\n", false, false, 0)], // RUN <<eo'f'
    &[("eo'f", "echo foo\n", true, false, 0)], // RUN <<eo\'f
    &[("eo'f", "echo foo\n", false, false, 0)], // RUN <<'e'o\'f
    &[("one two", "echo bar\n", false, false, 0)],
    &[("$EOF", "", true, false, 0)],
    &[("EOF", "", true, false, 0)], // RUN <<  EOF
    &[("EOF", "", true, false, 0)], // RUN <<  EOF  > foo
];

#[test]
fn buildkit_heredoc_table() {
    let parsed = parse(DOCKERFILE, "Dockerfile").unwrap();
    assert_eq!(parsed.nodes.len(), EXPECTED.len() + 1);
    for (node, expected) in parsed.nodes[1..].iter().zip(EXPECTED) {
        let got: Vec<(&str, &str, bool, bool, u32)> = node
            .heredocs
            .iter()
            .map(|h| {
                (
                    h.name.as_str(),
                    h.content.as_str(),
                    h.expand,
                    h.chomp,
                    h.file_descriptor,
                )
            })
            .collect();
        assert_eq!(
            got, *expected,
            "line {}: {}",
            node.start_line, node.original
        );
    }
}

#[test]
fn exec_form_has_no_heredocs() {
    let parsed = parse(
        "FROM a\nRUN [\"ls\", \"<<EOF\"]\nCOPY [\"<<EOF\", \"/dest\"]\nONBUILD RUN <<EOF\necho\nEOF\n",
        "Dockerfile",
    )
    .unwrap();
    assert!(parsed.nodes[1].heredocs.is_empty());
    assert!(parsed.nodes[2].heredocs.is_empty());
    // ONBUILD triggers carry their heredocs too.
    assert_eq!(parsed.nodes[3].heredocs.len(), 1);
    assert_eq!(parsed.nodes[3].end_line, 6);
}

#[test]
fn typed_instructions_use_heredoc_content() {
    let parsed = parse(
        "FROM a\nRUN <<-EOF bash\n\techo $HOME\n\tEOF\nCOPY --chmod=755 <<-'run.sh' /usr/local/bin/\n\t#!/bin/sh\n\techo $X\nrun.sh\n",
        "Dockerfile",
    )
    .unwrap();
    let Instruction::Run(run) = Instruction::from_node(&parsed.nodes[1]).unwrap() else {
        panic!("not RUN");
    };
    assert_eq!(run.command, Command::Shell("<<-EOF bash".into()));
    assert_eq!(
        run.heredocs[0].content, "echo $HOME\n",
        "<<- strips leading tabs"
    );
    let Instruction::Copy(copy) = Instruction::from_node(&parsed.nodes[2]).unwrap() else {
        panic!("not COPY");
    };
    assert_eq!(
        copy.sources,
        [Source::Heredoc {
            name: "run.sh".into(),
            content: "#!/bin/sh\necho $X\n".into(),
            expand: false,
        }]
    );
    assert_eq!(copy.chmod.as_deref(), Some("755"));
}

#[test]
fn unterminated_heredocs_are_errors_with_the_instruction_line() {
    for (source, line) in [
        ("FROM a\nRUN <<EOF\necho\n", 2),
        ("FROM a\nCOPY <<A <<B /d\na\nA\nb\n", 2),
        ("FROM a\nRUN <<-EOF\n  EOF\n", 2),
    ] {
        let err = parse(source, "Dockerfile").unwrap_err();
        assert!(
            err.message.starts_with("unterminated heredoc"),
            "{source:?}: {err}"
        );
        assert_eq!(err.start_line, line, "{source:?}");
    }
}
