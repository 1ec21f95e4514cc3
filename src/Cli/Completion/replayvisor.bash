# bash completion for replayvisor. Load it in ~/.bashrc with:
#   source <(replayvisor completion bash)
# It asks replayvisor itself (the [suggest] directive of System.CommandLine), so new commands,
# options and values complete without a new script. Errors never reach the terminal.
_replayvisor_complete() {
    # The line up to the cursor, with the command word as replayvisor (it may have been typed as a path).
    local line=${COMP_LINE:0:COMP_POINT}
    line=replayvisor${line#"${COMP_WORDS[0]}"}
    [[ $COMP_CWORD -eq 0 ]] && return 0
    # The word as a name: quotes and backslashes removed (`my\ traces/` and `"my traces/` are `my traces/`).
    local word=${COMP_WORDS[COMP_CWORD]} cur= quote= c i
    for (( i = 0; i < ${#word}; i++ )); do
        c=${word:i:1}
        if [[ $quote != "'" && $c == '\' ]]; then (( i++ )); cur+=${word:i:1}
        elif [[ -z $quote && ( $c == "'" || $c == '"' ) ]]; then quote=$c
        elif [[ -n $quote && $c == "$quote" ]]; then quote=
        else cur+=$c; fi
    done
    local item quoted
    local -a items
    mapfile -t items < <(command replayvisor "[suggest:${#line}]" "$line" 2>/dev/null)
    COMPREPLY=()
    for item in "${items[@]}"; do
        # Inserted as the shell reads it back: escaped (a space becomes `\ `), or as it is after an
        # opening quote, which readline keeps and closes.
        [[ -n $item && $item == "$cur"* ]] || continue
        if [[ $word == [\"\']* ]]; then quoted=$item; else printf -v quoted '%q' "$item"; fi
        COMPREPLY+=("$quoted")
    done
    # A lone directory gets no trailing space, so the next <Tab> goes on inside it.
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _replayvisor_complete replayvisor
