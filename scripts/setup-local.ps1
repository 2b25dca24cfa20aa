<#
.SYNOPSIS
Urumi on a local k3d cluster, for Windows: the same steps as scripts/setup-local.sh.

.DESCRIPTION
Creates (or reuses) a k3d cluster with Traefik on host port 8080, builds the platform image
from the Dockerfile and imports it, runs a throwaway Postgres in the cluster
(deploy/local/postgres.yaml, local use only), installs the chart with
helm/urumi/values-local.yaml, waits for the rollout, mints an admin token and prints the
dashboard's URL. Idempotent: a second run reuses the cluster and upgrades the release.

Needs Docker Desktop (running), k3d 5, kubectl, helm (3.8+ or 4) and curl.exe (Windows 10+
ships it), all on PATH. Tear down with: k3d cluster delete urumi

  powershell -ExecutionPolicy Bypass -File scripts\setup-local.ps1 [-Cluster urumi] [-Port 8080]

NOT RUN ANYWHERE YET: the development machines have neither PowerShell nor Docker. What was
checked there is its syntax only, by a tree-sitter PowerShell grammar (PyPI
tree-sitter-powershell, in scripts/test-setup-local.sh), which is not PowerShell's own parser.
#>
param(
    [string]$Cluster = $(if ($env:URUMI_K3D_CLUSTER) { $env:URUMI_K3D_CLUSTER } else { 'urumi' }),
    [int]$Port = 8080,
    [string]$K3sImage = $env:URUMI_K3S_IMAGE
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$Repo = Split-Path -Parent $PSScriptRoot
Set-Location $Repo
$Ns = 'urumi-system'
$Release = 'urumi'
$Image = 'urumi:dev'
$Values = 'helm/urumi/values-local.yaml'
$Dev = Join-Path $Repo '.dev'

function Say {
    param([string]$Message)
    Write-Host "== $Message"
}

# Native commands run with $ErrorActionPreference = 'Continue' inside these helpers: Windows
# PowerShell 5.1 turns a native command's redirected stderr into errors, which 'Stop' would
# make fatal even on success; the exit code decides instead ('Stop' does not look at it before
# PowerShell 7.4).

# Runs a native command, its output to the console; stops on a non-zero exit code.
function Invoke-Tool {
    param([string]$Exe, [string[]]$ToolArgs)
    $ErrorActionPreference = 'Continue'
    & $Exe @ToolArgs | Out-Host
    if ($LASTEXITCODE -ne 0) {
        throw "setup-local: '$Exe $($ToolArgs -join ' ')' failed (exit $LASTEXITCODE)"
    }
}

# Runs a native command and returns its stdout (stderr to the console); stops on failure.
function Get-ToolOutput {
    param([string]$Exe, [string[]]$ToolArgs)
    $ErrorActionPreference = 'Continue'
    $Out = & $Exe @ToolArgs
    if ($LASTEXITCODE -ne 0) {
        throw "setup-local: '$Exe $($ToolArgs -join ' ')' failed (exit $LASTEXITCODE)"
    }
    return $Out
}

# True when a native command exits 0; its output is discarded.
function Test-Tool {
    param([string]$Exe, [string[]]$ToolArgs)
    $ErrorActionPreference = 'Continue'
    & $Exe @ToolArgs *> $null
    return ($LASTEXITCODE -eq 0)
}

# Renders an object with `kubectl ... --dry-run=client -o yaml` and applies it (create or update).
function Set-KubeObject {
    param([string[]]$CreateArgs)
    $Yaml = Get-ToolOutput kubectl ($CreateArgs + @('--dry-run=client', '-o', 'yaml'))
    $ErrorActionPreference = 'Continue'
    $Yaml | kubectl apply -f '-' | Out-Host
    if ($LASTEXITCODE -ne 0) {
        throw "setup-local: kubectl apply failed (exit $LASTEXITCODE)"
    }
}

$Hints = @{
    docker  = 'Docker Desktop, https://docs.docker.com/desktop/setup/install/windows-install/'
    k3d     = 'k3d, https://k3d.io (e.g. winget install k3d or choco install k3d)'
    kubectl = 'kubectl, https://kubernetes.io/docs/tasks/tools/ (e.g. winget install Kubernetes.kubectl)'
    helm    = 'helm, https://helm.sh/docs/intro/install/ (e.g. winget install Helm.Helm)'
    curl    = 'curl.exe (part of Windows 10 and later)'
}
$Missing = @()
foreach ($Tool in 'docker', 'k3d', 'kubectl', 'helm', 'curl') {
    $Exe = if ($Tool -eq 'curl') { 'curl.exe' } else { $Tool }
    if (-not (Get-Command $Exe -ErrorAction SilentlyContinue)) {
        $Missing += $Tool
    }
}
if ($Missing.Count -gt 0) {
    $Lines = @("setup-local: missing required tool(s): $($Missing -join ' ')")
    foreach ($Tool in $Missing) {
        $Lines += "  install $($Hints[$Tool])"
    }
    Write-Error ($Lines -join [Environment]::NewLine)
}
if (-not (Test-Tool docker @('info'))) {
    Write-Error 'setup-local: docker is installed but its engine does not answer (docker info failed): start Docker Desktop first'
}

# 1. The cluster: created once, reused afterwards.
$Existing = @(Get-ToolOutput k3d @('cluster', 'list', '--no-headers') | ForEach-Object { ($_ -split '\s+')[0] })
if ($Existing -contains $Cluster) {
    Say "k3d cluster $Cluster exists: reusing it"
}
else {
    Say "creating k3d cluster $Cluster (ingress on host port $Port)"
    $Create = @('cluster', 'create', $Cluster, '--agents', '1', '-p', "${Port}:80@loadbalancer", '--wait')
    if ($K3sImage) {
        $Create += @('--image', $K3sImage)
    }
    Invoke-Tool k3d $Create
}
New-Item -ItemType Directory -Force -Path $Dev | Out-Null
$Kubeconfig = Join-Path $Dev "k3d-$Cluster.kubeconfig"
$Config = Get-ToolOutput k3d @('kubeconfig', 'get', $Cluster)
# Where k3d names the API server 0.0.0.0 (the address it publishes the port on), a Windows
# client cannot dial it: 127.0.0.1 instead.
$Config = $Config -replace 'https://0\.0\.0\.0:', 'https://127.0.0.1:'
Set-Content -Path $Kubeconfig -Value $Config -Encoding ascii
# Every kubectl and helm below talks to this cluster only, whatever the current context is.
$env:KUBECONFIG = $Kubeconfig
if (-not (Test-Tool kubectl @('get', 'nodes'))) {
    throw "setup-local: cluster $Cluster does not answer (is it stopped? k3d cluster start $Cluster)"
}

# 2. The platform image, tagged with its image id too, so the pods roll exactly when it changed.
Say "building $Image from the Dockerfile"
Invoke-Tool docker @('build', '-t', $Image, '.')
$Id = ("$(Get-ToolOutput docker @('image', 'inspect', '--format', '{{.Id}}', $Image))".Trim()) -replace '^sha256:', ''
$Tag = 'dev-' + $Id.Substring(0, 12)
Invoke-Tool docker @('tag', $Image, "urumi:$Tag")
Say "importing $Image (urumi:$Tag) into $Cluster"
Invoke-Tool k3d @('image', 'import', $Image, "urumi:$Tag", '-c', $Cluster)

# 3. Postgres (local use only) and the Secret the chart reads its URL from.
Say "namespace $Ns, local Postgres (deploy/local/postgres.yaml)"
Set-KubeObject @('create', 'namespace', $Ns)
Invoke-Tool kubectl @('-n', $Ns, 'apply', '-f', 'deploy/local/postgres.yaml')
Invoke-Tool kubectl @('-n', $Ns, 'rollout', 'status', 'deployment/urumi-postgres', '--timeout=300s')
Set-KubeObject @('-n', $Ns, 'create', 'secret', 'generic', 'urumi-database',
    "--from-literal=url=postgres://postgres@urumi-postgres.$Ns.svc.cluster.local:5432/urumi")

# 4. The chart (the migrate hook runs first), then both Deployments rolled out.
Say "helm upgrade --install $Release ($Values, image urumi:$Tag)"
Invoke-Tool helm @('upgrade', '--install', $Release, 'helm/urumi', '--namespace', $Ns, '-f', $Values,
    '--set', 'image.repository=urumi', '--set', "image.tag=$Tag", '--set', 'image.pullPolicy=Never',
    '--wait', '--timeout', '10m')
Invoke-Tool kubectl @('-n', $Ns, 'rollout', 'status', 'deployment/urumi-api', '--timeout=300s')
Invoke-Tool kubectl @('-n', $Ns, 'rollout', 'status', 'deployment/urumi-worker', '--timeout=300s')

# 5. The API through Traefik (Host header: no DNS needed here).
$Url = "http://api.localhost:$Port"
Say "waiting for $Url/readyz through the ingress"
$Ready = $false
foreach ($Attempt in 1..60) {
    if (Test-Tool curl.exe @('-fsS', '-o', 'NUL', '-H', 'Host: api.localhost', "http://127.0.0.1:$Port/readyz")) {
        $Ready = $true
        break
    }
    Start-Sleep -Seconds 2
}
if (-not $Ready) {
    throw "setup-local: $Url/readyz did not answer through Traefik; see kubectl -n $Ns get ingress,pods"
}

# 6. An admin token (a live token's name must be unique); the command prints it alone on stdout.
Say 'minting an admin token'
$Stamp = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds()
$Token = "$(Get-ToolOutput kubectl @('-n', $Ns, 'exec', 'deploy/urumi-api', '--', 'urumi-api', 'token', 'create', '--name', "local-admin-$Stamp", '--role', 'admin'))".Trim()
if (-not $Token) {
    throw 'setup-local: urumi-api token create printed no token'
}
Set-Content -Path (Join-Path $Dev "k3d-$Cluster.admin-token") -Value $Token -Encoding ascii

Write-Host @"

Urumi is running on k3d cluster $Cluster (namespace $Ns, release $Release, image urumi:$Tag)
  dashboard    $Url/dashboard/   (sign in with the admin token)
  API          $Url   (docs: $Url/docs)
  admin token  $Token
  stores       http://<slug>.stores.localhost:$Port
  kubeconfig   $Kubeconfig   (`$env:KUBECONFIG = '$Kubeconfig')

Try:  `$env:URUMI_URL = '$Url'; `$env:URUMI_TOKEN = '$Token'
      urumictl stores create "My Shop"; urumictl events --until store.ready

The real-cluster e2e against this cluster (its own worker; DATABASE_URL: a Postgres on this
machine; the ingress at 127.0.0.1:$Port):
  `$env:KUBECONFIG = '$Kubeconfig'; `$env:URUMI_INGRESS = '127.0.0.1:$Port'
  cargo test -p urumi-workflows --test real_cluster -- --ignored

Upgrade after a change: run this script again. Tear down: k3d cluster delete $Cluster
"@
