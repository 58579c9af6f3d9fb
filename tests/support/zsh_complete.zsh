# Prints the matches zsh's completion system offers for a command line, one per line:
#   CTRE_ZSH_COMPLETION=ctre.zsh zsh tests/support/zsh_complete.zsh 'ctre prune --d'
# An interactive zsh in a pty (zsh/zpty) loads compinit and the script
# (zsh_complete_setup.zsh), its compadd prints each match, and Tab is pressed after the line;
# the matches arrive between two NUL lines. (After Valodim's zsh-capture-completion.)
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "source ${(q)${0:A:h}}/zsh_complete_setup.zsh"
zpty -w z "$1"$'\t'
integer tog=0
while zpty -r z; do :; done | while IFS= read -r line; do
  if [[ $line == *$'\0\r' ]]; then (( tog++ )) && return 0 || continue; fi
  (( tog )) && echo -E - ${line%$'\r'}
done
return 2
