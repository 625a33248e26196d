//! The stage dependency graph: what `COPY --from` and `RUN --mount from=`
//! refer to, cycles, and the order stages are built in.

use super::Stage;

/// The `from=` of a `RUN --mount` value.
pub(super) fn mount_from(mount: &str) -> Option<String> {
    mount.split(',').find_map(|field| {
        let (key, value) = field.split_once('=')?;
        (key.trim() == "from").then(|| value.trim().to_string())
    })
}

/// Resolves `COPY --from`: a stage index, a stage name, or (`None`) an image.
pub(super) fn resolve_copy_from(
    from: &str,
    stage_count: usize,
    find_stage: &dyn Fn(&str) -> Option<usize>,
) -> Result<Option<usize>, String> {
    if from.contains('$') {
        return Err("variable expansion is not supported for --from; define a new stage with FROM using an ARG from the global scope instead".to_string());
    }
    if let Ok(index) = from.parse::<i64>() {
        if index < 0 || index as usize >= stage_count {
            return Err(format!(
                "invalid stage index {index}: the Dockerfile has {stage_count} stage(s)"
            ));
        }
        return Ok(Some(index as usize));
    }
    Ok(find_stage(from))
}

/// A stage on a dependency cycle, if there is one.
pub(super) fn find_cycle(stages: &[Stage]) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(stages: &[Stage], index: usize, marks: &mut [Mark]) -> Option<usize> {
        marks[index] = Mark::Active;
        for &dep in &stages[index].depends_on {
            match marks.get(dep) {
                Some(Mark::Active) => return Some(dep),
                Some(Mark::New) => {
                    if let Some(found) = visit(stages, dep, marks) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        marks[index] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; stages.len()];
    (0..stages.len()).find_map(|i| {
        if marks[i] == Mark::New {
            visit(stages, i, &mut marks)
        } else {
            None
        }
    })
}

/// Appends the stages `index` needs, then `index`, each once.
pub(super) fn build_order(
    stages: &[Stage],
    index: usize,
    visited: &mut [bool],
    path: &mut Vec<usize>,
    out: &mut Vec<usize>,
) {
    if visited[index] || path.contains(&index) {
        return;
    }
    path.push(index);
    for &dep in &stages[index].depends_on {
        build_order(stages, dep, visited, path, out);
    }
    path.pop();
    visited[index] = true;
    out.push(index);
}
