#compdef replayvisor
# zsh completion for replayvisor. Load it in ~/.zshrc (after compinit) with:
#   source <(replayvisor completion zsh)
# or save it as _replayvisor in a directory on $fpath. It asks replayvisor itself (the [suggest]
# directive of System.CommandLine), so new commands and options complete without a new script.
_replayvisor() {
    local line="replayvisor ${(j: :)${(@)words[2,CURRENT]}}"
    local -a items dirs others
    items=("${(@f)$(command replayvisor "[suggest:${#line}]" "$line" 2>/dev/null)}")
    items=(${items:#})
    dirs=(${(M)items:#*/})
    others=(${items:#*/})
    (( ${#dirs} )) && compadd -S '' -- "${dirs[@]}"
    (( ${#others} )) && compadd -- "${others[@]}"
    return 0
}
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _replayvisor "$@"
elif (( $+functions[compdef] )); then
    compdef _replayvisor replayvisor
else
    # Sourced before zsh's completion system is loaded: say what to do instead of zsh's "command not found: compdef".
    print -u2 "replayvisor: zsh completion needs compinit first: put 'autoload -Uz compinit && compinit' before this line in ~/.zshrc"
fi
