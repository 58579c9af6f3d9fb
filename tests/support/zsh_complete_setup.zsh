# Sourced by zsh_complete.zsh inside the pty: compinit, a compadd that prints each match, and
# the completion script under test ($CTRE_ZSH_COMPLETION).
PROMPT=
autoload -U compinit; compinit -u -D 2>/dev/null
bindkey '^M' undefined; bindkey '^J' undefined; bindkey '^I' complete-word
null-line () { echo -E - $'\0' }
compprefuncs=( null-line ); comppostfuncs=( null-line exit )
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
zstyle ':completion:*' list-separator ''
compadd () {
  # Calls that only fill arrays (-O, -A, -D) add nothing: passed through.
  if (( ${@[(I)-[OAD]]} )); then builtin compadd "$@"; return $?; fi
  # -P and -p: prefixes the match is shown with (a file's directory), printed with it.
  local -a __hits __apre __hpre
  zparseopts -E P:=__apre p:=__hpre
  builtin compadd -A __hits "$@"
  local h; for h in $__hits; do echo -E - "${__apre[2]}${__hpre[2]}$h"; done
  # Really add them too: a completer that added nothing would try its next tag (all files).
  builtin compadd "$@"
}
source $CTRE_ZSH_COMPLETION
