#!/bin/bash
# On-create script of the course's notebook-instance lifecycle configuration. SageMaker runs it
# once, as root, when the notebook instance is created (on-start.sh runs right after it), and
# fails the creation if it takes over 5 minutes or exits non-zero.
# It clones the course into the persistent SageMaker folder, prepares a persistent venv and a
# hook for each kernel, and installs the course packages (the lines of requirements.txt that
# 00_setup's install cell installs) in the background. A creation fails, visibly, if the course
# cannot be cloned.
# Every setting below can be overridden by an environment variable of the same name.
set -euo pipefail

# --- settings -------------------------------------------------------------------------------
COURSE_REPO_URL="${COURSE_REPO_URL:-}" # the course's clone URL: set it here
COURSE_BRANCH="${COURSE_BRANCH:-main}"
COURSE_FOLDER="${COURSE_FOLDER:-sagemaker-titanic-course}"
NOTEBOOK_USER="${NOTEBOOK_USER:-ec2-user}"
SAGEMAKER_DIR="${SAGEMAKER_DIR:-/home/ec2-user/SageMaker}" # the only folder kept across stops
CONDA_ENVS_DIR="${CONDA_ENVS_DIR:-/home/ec2-user/anaconda3/envs}"
# The conda environments behind the stock kernels (names under CONDA_ENVS_DIR, or prefixes).
KERNEL_ENVS="${KERNEL_ENVS:-python3 pytorch_p310}"
# Projects whose lines of the course's requirements.txt are installed, with the range written
# there. Empty: those of 00_setup's install cell (COURSE_PROJECTS in helpers/kernel_setup.py).
COURSE_PACKAGES="${COURSE_PACKAGES:-}"
PACKAGES_DIR="${PACKAGES_DIR:-$SAGEMAKER_DIR/.$COURSE_FOLDER-packages}"
LIFECYCLE_LOG="${LIFECYCLE_LOG:-$SAGEMAKER_DIR/$COURSE_FOLDER-lifecycle.log}"
INSTALL_IN_BACKGROUND="${INSTALL_IN_BACKGROUND:-1}" # 0: install before the script returns
GIT_TIMEOUT="${GIT_TIMEOUT:-90}"                    # seconds for a clone or a fetch
LIFECYCLE_STEP=on-create
SETTINGS=(COURSE_REPO_URL COURSE_BRANCH COURSE_FOLDER NOTEBOOK_USER SAGEMAKER_DIR CONDA_ENVS_DIR
  KERNEL_ENVS COURSE_PACKAGES PACKAGES_DIR LIFECYCLE_LOG INSTALL_IN_BACKGROUND GIT_TIMEOUT
  LIFECYCLE_STEP PATH)

# --- shared with on-create.sh (tests/unit/test_lifecycle_config.py keeps the two in step) ----
log() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) $LIFECYCLE_STEP: $*"
  # In the background installer stderr already is the log file.
  [[ "${IN_BACKGROUND:-0}" == 1 ]] || printf '%s\n' "$line" >>"$LIFECYCLE_LOG"
  printf '%s\n' "$line" >&2
}

normalized() {
  # PEP 503 form of a project name: lower case, runs of - _ . as one -.
  local name="${1,,}"
  name="${name//[_.]/-}"
  while [[ "$name" == *--* ]]; do name="${name//--/-}"; done
  printf '%s\n' "$name"
}

wanted_packages() {
  local name
  for name in $COURSE_PACKAGES; do
    name="$(normalized "$name")"
    case "$name" in
      torch | torchvision | torchaudio)
        log "$name skipped: the PyTorch kernel has its own build (a pip one is a CUDA download)"
        ;;
      *) printf '%s\n' "$name" ;;
    esac
  done
}

course_specs() {
  # The lines of the course's requirements.txt that 00_setup's install cell installs, as written,
  # read by the cell's own code run by kernel env python $1 (markers are judged for it).
  local py="$1" only=()
  local args=(-m helpers.kernel_setup --lines --requirements requirements.txt)
  if [[ -n "${COURSE_PACKAGES// /}" ]]; then
    mapfile -t only < <(wanted_packages)
    ((${#only[@]} > 0)) || return 0
    args+=(--only "${only[@]}")
  fi
  (cd "$SAGEMAKER_DIR/$COURSE_FOLDER" && "$py" "${args[@]}")
}

env_prefix() {
  if [[ "$1" == /* ]]; then printf '%s\n' "$1"; else printf '%s\n' "$CONDA_ENVS_DIR/$1"; fi
}

python_version() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

course_venv() {
  # The persistent venv for kernel env $1 with Python $2: on the EBS volume, kept across stops.
  printf '%s\n' "$PACKAGES_DIR/$(basename "$1")-py$2"
}

write_hook() {
  # A .pth in the kernel's site-packages that puts the course venv's packages first: the kernel
  # then imports the course's SDK rather than its own, with no new kernel to register.
  local kernel_site="$1" course_site="$2" hook
  if [[ "$course_site" == *[\'\\]* ]]; then
    log "cannot write a hook for a path with a quote or backslash: $course_site"
    return 1
  fi
  if [[ ! -d "$kernel_site" ]]; then
    log "no $kernel_site to hook into"
    return 1
  fi
  hook="$kernel_site/$COURSE_FOLDER-course-packages.pth"
  if ! printf '%s\n' "import sys; p = '$course_site'; p in sys.path or sys.path.insert(next((i for i, e in enumerate(sys.path) if e.endswith('site-packages')), len(sys.path)), p)" >"$hook.tmp" ||
    ! mv "$hook.tmp" "$hook"; then
    log "could not write $hook"
    return 1
  fi
  log "kernel hook: $hook"
}

prepare_envs() {
  # Foreground, seconds: a venv per kernel env (system site-packages, so pip adds only what the
  # kernel lacks) and its hook, re-written at every start.
  local env prefix py ver venv
  for env in $KERNEL_ENVS; do
    prefix="$(env_prefix "$env")"
    py="$prefix/bin/python"
    if [[ ! -x "$py" ]]; then
      log "kernel env $env not found ($py): skipped"
      continue
    fi
    if ! ver="$(python_version "$py")"; then
      log "kernel env $env: $py does not run: skipped"
      continue
    fi
    venv="$(course_venv "$env" "$ver")"
    if [[ ! -d "$venv" ]] && ! "$py" -m venv --system-site-packages --without-pip "$venv"; then
      log "could not create $venv: skipped"
      continue
    fi
    write_hook "$prefix/lib/python$ver/site-packages" "$venv/lib/python$ver/site-packages" ||
      log "kernel env $env: no hook written"
  done
}

install_all() {
  # pip-installs the course packages into each kernel env's venv, once per requirements change.
  local env prefix py ver venv stamp req specs listed
  mkdir -p "$PACKAGES_DIR"
  exec 9>"$PACKAGES_DIR/.install.lock"
  if ! flock -n 9; then
    log "another install is running; it covers this one"
    return 0
  fi
  req="$SAGEMAKER_DIR/$COURSE_FOLDER/requirements.txt"
  if [[ ! -f "$req" ]]; then
    log "no $req: nothing to install"
    return 0
  fi
  for env in $KERNEL_ENVS; do
    prefix="$(env_prefix "$env")"
    py="$prefix/bin/python"
    [[ -x "$py" ]] || continue
    ver="$(python_version "$py")" || continue
    venv="$(course_venv "$env" "$ver")"
    [[ -d "$venv" ]] || continue
    if ! listed="$(course_specs "$py" 2>>"$LIFECYCLE_LOG")"; then
      log "kernel env $env: helpers/kernel_setup.py could not list the course's lines (see above)"
      continue
    fi
    if [[ -z "$listed" ]]; then
      log "kernel env $env: no course lines to install (COURSE_PACKAGES=$COURSE_PACKAGES)"
      continue
    fi
    mapfile -t specs <<<"$listed"
    stamp="$venv/.course-specs"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$listed" ]]; then
      log "kernel env $env: course packages up to date"
      continue
    fi
    log "kernel env $env (Python $ver): installing ${specs[*]} into $venv"
    if "$venv/bin/python" -m pip install --no-input --disable-pip-version-check \
      --progress-bar=off "${specs[@]}" >>"$LIFECYCLE_LOG" 2>&1; then
      printf '%s\n' "$listed" >"$stamp"
      log "kernel env $env: course packages installed"
    else
      log "kernel env $env: pip failed (exit $?), see above; the next start tries again"
    fi
  done
}

start_install() {
  if [[ "$INSTALL_IN_BACKGROUND" == 1 ]]; then
    # nohup, as AWS advises for steps that could outlast the 5-minute limit.
    log "installing the course packages in the background; progress in $LIFECYCLE_LOG"
    IN_BACKGROUND=1 nohup bash -c "$(declare -f); set -uo pipefail; install_all" \
      >>"$LIFECYCLE_LOG" 2>&1 </dev/null &
  else
    install_all
  fi
}

clone_course() {
  local repo="$SAGEMAKER_DIR/$COURSE_FOLDER"
  if [[ -e "$repo/.git" ]]; then
    log "$repo is already a clone: kept as it is"
    return 0
  fi
  if [[ -e "$repo" ]]; then
    log "$repo exists and is not a git clone: left alone, not cloned"
    return 1
  fi
  if [[ -z "$COURSE_REPO_URL" ]]; then
    log "COURSE_REPO_URL is empty: set it at the top of the script (or in the environment)"
    return 1
  fi
  log "cloning $COURSE_REPO_URL (branch $COURSE_BRANCH) into $repo"
  if ! GIT_TERMINAL_PROMPT=0 timeout "$GIT_TIMEOUT" git clone --quiet --branch "$COURSE_BRANCH" \
    "$COURSE_REPO_URL" "$repo" >>"$LIFECYCLE_LOG" 2>&1; then
    log "clone failed (see above)"
    return 1
  fi
}

as_notebook_user() {
  # Runs function $1 as the notebook user (AWS: lifecycle scripts run as root, Jupyter as
  # ec2-user), passing the settings explicitly since sudo resets the environment.
  local assignments=() name code
  for name in "${SETTINGS[@]}"; do assignments+=("$name=${!name}"); done
  code="$(declare -f); set -euo pipefail; $1"
  if [[ "$(id -un)" == "$NOTEBOOK_USER" ]]; then
    env "${assignments[@]}" bash -c "$code"
  else
    sudo -n -u "$NOTEBOOK_USER" -H env "${assignments[@]}" bash -c "$code"
  fi
}

# --- on-create ------------------------------------------------------------------------------
create_main() {
  log "started (course folder $SAGEMAKER_DIR/$COURSE_FOLDER)"
  if ! clone_course; then
    log "the course is not cloned, so this creation fails (see above)"
    return 1
  fi
  prepare_envs
  start_install
  log "finished"
}

main() {
  if [[ ! -d "$SAGEMAKER_DIR" ]]; then
    echo "on-create: $SAGEMAKER_DIR does not exist" >&2
    exit 1
  fi
  as_notebook_user create_main
}

[[ "${LIFECYCLE_SOURCE_ONLY:-0}" == 1 ]] || main
