#!/usr/bin/env bash
#SBATCH --job-name=scatflow-driver
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=1-00:00:00
#SBATCH --output=scatflow-driver-%j.out
##SBATCH --partition=PARTITION
##SBATCH --account=ACCOUNT
#
# sbatch-driver.sh -- run the scatflow DRIVER (`scatflow run CONFIG.toml`) as
# a SLURM job, for clusters where long-running processes on the login node
# are not allowed.
#
# Usage:
#     sbatch deploy/sbatch-driver.sh path/to/config.toml [scatflow-run options]
#     (e.g. ... config.toml --cluster slurm --overwrite; the config's
#     cluster.kind, or --cluster, must select the SLURM/jobqueue backend)
#     squeue -u $USER            # the driver, then its dask-worker jobs
#     tail -f scatflow-driver-<jobid>.out
#
# The driver holds the Dask scheduler and submits the worker jobs itself
# (dask-jobqueue, settings from ~/.config/dask/jobqueue.yaml; see
# deploy/jobqueue.yaml), so:
#   * the driver job is small (the scheduler needs ~1-2 cores and a few GB)
#     but must outlive the workers: give it the longest --time your partition
#     allows (`sinfo -o "%P %l"` shows each partition's limit). The defaults
#     above (1 day, 4 GB) fit the single-node SLURM of deploy/slurm; raise them
#     on the command line, e.g. `sbatch --time=7-00:00:00 --mem=8G deploy/...`,
#     which overrides these lines. A driver stopped at its limit gets SIGTERM:
#     completed blocks are kept, and the same command resumes;
#     workers retire and are replaced (--lifetime) within their own walltime;
#   * the cluster must allow `sbatch` from compute nodes (most do; ask your
#     admins if worker jobs never appear);
#   * worker nodes must reach the driver's node: set `interface` in
#     jobqueue.yaml if the default network is not the one they share.
# The #SBATCH lines above are only defaults: command-line options win, e.g.
#     sbatch --partition=long --time=7-00:00:00 deploy/sbatch-driver.sh run.toml
set -euo pipefail

CONFIG=${1:?usage: sbatch sbatch-driver.sh CONFIG.toml [scatflow-run options]}
shift

# --- environment: adapt to your site -----------------------------------------
# module load python/3.11
# source "$HOME/venvs/scatflow/bin/activate"

# Threads for the driver itself; the workers' are set by jobqueue.yaml.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# Optional: replace retired workers faster than the 15 s default.
# export DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT=2s

echo "scatflow driver: job ${SLURM_JOB_ID:-?} on $(hostname) at $(date -Is), config $CONFIG"
# exec: scatflow replaces this shell, so SIGTERM from scancel or the time limit
# reaches it directly. On a normal exit dask-jobqueue cancels the worker jobs;
# if the driver is killed, its workers lose the scheduler and end their jobs
# on their own (seconds in tests; at most jobqueue's death-timeout).
exec scatflow run "$CONFIG" "$@"
