# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash disable=SC2207 # COMPREPLY=($(compgen ...)) is the completion idiom
# Bash completion for healctl: verbs, their options, and the values healctl
# itself can list (classes, pending ids, enrolled units). Installed as
# completions/healctl, loaded by bash-completion the first time it is needed.

# The failure classes of the effective policy ("CLASS: mode ..." lines of status).
_healctl_classes() {
        healctl status --no-bus 2>/dev/null | sed -n 's/^\([a-z0-9][A-Za-z0-9:_.-]*\): mode .*/\1/p'
}

# Ids of pending actions: the first column of the table, without its header.
_healctl_pending_ids() {
        healctl pending 2>/dev/null | awk 'NR > 1 && $1 != "No" { print $1 }'
}

_healctl_enrolled() {
        healctl enroll --list 2>/dev/null | awk '{ print $1 }'
}

_healctl_services() {
        systemctl list-units --type=service --all --no-legend --plain 2>/dev/null | awk '{ print $1 }'
        systemctl list-unit-files --type=service --no-legend --plain 2>/dev/null | awk '{ print $1 }'
}

_healctl() {
        local cur prev words cword
        _init_completion || return

        local verbs="status audit enroll unenroll pending approve cancel breaker kill-switch policy
                shadow-report run"
        local verb="" i
        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                -*) ;;
                *)
                        verb=${words[i]}
                        break
                        ;;
                esac
        done

        if [ -z "$verb" ]; then
                COMPREPLY=($(compgen -W "$verbs --help --version" -- "$cur"))
                return
        fi

        # Options that take a value.
        case $prev in
        --class)
                COMPREPLY=($(compgen -W "$(_healctl_classes)" -- "$cur"))
                return
                ;;
        --event)
                COMPREPLY=($(compgen -W "detected confirmed dismissed skipped would-act acting verified
                        verify-failed action-failed escalated breaker-opened breaker-closed budget-exhausted
                        approved cancelled pending expired" -- "$cur"))
                return
                ;;
        --since)
                COMPREPLY=($(compgen -W "-1h -1d -7d today yesterday" -- "$cur"))
                return
                ;;
        --directory)
                _filedir
                return
                ;;
        --mount)
                _filedir -d
                return
                ;;
        --target)
                return
                ;;
        esac

        # The words after the verb, options left out.
        local -a args=()
        for ((i = i + 1; i < cword; i++)); do
                case ${words[i]} in
                --class | --target | --event | --since | --directory | --mount) ((i++)) ;;
                -*) ;;
                *) args+=("${words[i]}") ;;
                esac
        done

        case $verb in
        status)
                COMPREPLY=($(compgen -W "--json --directory --no-bus --help" -- "$cur"))
                ;;
        audit)
                COMPREPLY=($(compgen -W "--class --target --event --since --directory --json --help" -- "$cur"))
                ;;
        enroll)
                if [[ $cur == -* ]]; then
                        COMPREPLY=($(compgen -W "--runtime --no-reload --list --help" -- "$cur"))
                else
                        COMPREPLY=($(compgen -W "$(_healctl_services)" -- "$cur"))
                fi
                ;;
        unenroll)
                if [[ $cur == -* ]]; then
                        COMPREPLY=($(compgen -W "--runtime --no-reload --help" -- "$cur"))
                else
                        COMPREPLY=($(compgen -W "$(_healctl_enrolled)" -- "$cur"))
                fi
                ;;
        pending)
                COMPREPLY=($(compgen -W "--expire --json --help" -- "$cur"))
                ;;
        approve | cancel)
                if [[ $cur == -* ]]; then
                        if [ "$verb" = approve ]; then
                                COMPREPLY=($(compgen -W "--no-start --json --help" -- "$cur"))
                        else
                                COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
                        fi
                elif [ ${#args[@]} -eq 0 ]; then
                        COMPREPLY=($(compgen -W "$(_healctl_pending_ids)" -- "$cur"))
                fi
                ;;
        breaker)
                case ${#args[@]} in
                0) COMPREPLY=($(compgen -W "reset --help" -- "$cur")) ;;
                1) COMPREPLY=($(compgen -W "$(_healctl_classes)" -- "$cur")) ;;
                esac
                ;;
        kill-switch)
                if [ ${#args[@]} -eq 0 ]; then
                        COMPREPLY=($(compgen -W "on off status --help" -- "$cur"))
                else
                        case ${args[0]} in
                        on) COMPREPLY=($(compgen -W "--persistent" -- "$cur")) ;;
                        status) COMPREPLY=($(compgen -W "--quiet --json" -- "$cur")) ;;
                        esac
                fi
                ;;
        policy)
                if [ ${#args[@]} -eq 0 ]; then
                        COMPREPLY=($(compgen -W "check keys --help" -- "$cur"))
                elif [ "${args[0]}" = check ]; then
                        if [[ $cur == -* ]]; then
                                COMPREPLY=($(compgen -W "--json" -- "$cur"))
                        else
                                _filedir json
                        fi
                elif [ "${args[0]}" = keys ]; then
                        COMPREPLY=($(compgen -W "--describe" -- "$cur"))
                fi
                ;;
        shadow-report)
                COMPREPLY=($(compgen -W "--since --directory --json --help" -- "$cur"))
                ;;
        run)
                if [ ${#args[@]} -eq 0 ]; then
                        COMPREPLY=($(compgen -W "disk-reclaim --help" -- "$cur"))
                else
                        COMPREPLY=($(compgen -W "--mount" -- "$cur"))
                fi
                ;;
        esac
} && complete -F _healctl healctl
