#!/usr/bin/env bash
# Make sure pdflatex and the LaTeX packages of the generated tables (booktabs, siunitx)
# are installed; `make setup` runs this, so `make test` can compile the tables.
# Missing: installs Debian's TeX packages with apt-get when run as root or with
# password-less sudo; otherwise says what to install and fails, unless
# XCAL_SKIP_TEX=1 (then the compile tests are skipped outside CI).
set -euo pipefail

PACKAGES="texlive-latex-base texlive-latex-recommended texlive-science"
STYLES="booktabs.sty siunitx.sty"

have_tex() {
  command -v pdflatex >/dev/null 2>&1 || return 1
  command -v kpsewhich >/dev/null 2>&1 || return 1
  local style
  for style in $STYLES; do
    kpsewhich "$style" >/dev/null 2>&1 || return 1
  done
}

if have_tex; then
  exit 0
fi
if [ "${XCAL_SKIP_TEX:-}" = "1" ]; then
  echo "ensure-tex: pdflatex or booktabs/siunitx missing; XCAL_SKIP_TEX=1, so the" \
    "table-compiling tests will be skipped." >&2
  exit 0
fi
how="install the Debian packages $PACKAGES (or any TeX distribution with booktabs and siunitx) and run make again, or set XCAL_SKIP_TEX=1 to skip the tests that compile the generated tables."
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tex: pdflatex (with booktabs and siunitx) is needed by the tests and apt-get is not available: $how" >&2
  exit 1
fi
if [ "$(id -u)" = "0" ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "ensure-tex: pdflatex (with booktabs and siunitx) is needed by the tests; installing it needs root or password-less sudo: $how" >&2
  exit 1
fi
echo "ensure-tex: installing $PACKAGES with apt-get (pdflatex, for the tests that compile the generated tables)" >&2
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
if ! have_tex; then
  echo "ensure-tex: apt-get finished but pdflatex, booktabs.sty or siunitx.sty is still missing: $how" >&2
  exit 1
fi
