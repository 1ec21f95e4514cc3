# bash completion for replayvisor. Load it in ~/.bashrc with:
#   source <(replayvisor completion bash)
# It asks replayvisor itself (the [suggest] directive of System.CommandLine), so new commands,
# options and values complete without a new script. Errors never reach the terminal.
_replayvisor_complete() {
    # The line up to the cursor, with the command word as replayvisor (it may have been typed as a path).
    local line=${COMP_LINE:0:COMP_POINT}
    line=replayvisor${line#"${COMP_WORDS[0]}"}
    local cur=${COMP_WORDS[COMP_CWORD]}
    [[ $COMP_CWORD -eq 0 ]] && return 0
    local item
    local -a items
    mapfile -t items < <(command replayvisor "[suggest:${#line}]" "$line" 2>/dev/null)
    COMPREPLY=()
    for item in "${items[@]}"; do
        [[ -n $item && $item == "$cur"* ]] && COMPREPLY+=("$item")
    done
    # A lone directory gets no trailing space, so the next <Tab> goes on inside it.
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _replayvisor_complete replayvisor
