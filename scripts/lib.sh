# Shared by the set-up scripts (sourced). The caller defines log().

# Run a command as root: directly, through sudo, or fail saying so.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		log "error: need root for: $*"
		exit 1
	fi
}
