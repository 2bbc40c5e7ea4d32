# Shared set-up of the pinned load scripts (compare.sh, soak.sh), sourced from the repository root after they set
# SERVER_CPU and LOAD_CPU: checks taskset and two CPUs, builds the server and the load tool in Release, and defines
# $out (load/out), $work (a temp directory removed at exit), pids (killed at exit), $load, $server_dll and wait_port.
command -v taskset >/dev/null || { echo "taskset is needed (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "two CPUs are needed: the server on one, the load on the other" >&2; exit 1; }
out=load/out
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
dotnet build -c Release src/FastIngest.Server -v q -nologo >/dev/null
dotnet build -c Release load/FastIngest.Load -v q -nologo >/dev/null
load="dotnet load/FastIngest.Load/bin/Release/net10.0/FastIngest.Load.dll"
server_dll=src/FastIngest.Server/bin/Release/net10.0/FastIngest.Server.dll
# wait_port PORT: until something listens on 127.0.0.1:PORT (30 s at most).
wait_port() { for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }
