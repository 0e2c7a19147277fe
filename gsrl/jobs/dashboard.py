"""What a meta-training run's TensorBoard opens on: evaluation, losses, the scheduler, optimisation, and
the infrastructure last; with a description of every tag the run writes."""

from __future__ import annotations

from gsrl.config import Config
from gsrl.telemetry import Chart, Dashboard

REWARD_MEANINGS = {
    "contrastive": "the NT-Xent loss between the selected pairs of subgraphs (GS-Meta's reward: pairs the "
                   "encoder finds hard to tell apart score higher). It falls as the encoder learns, so a "
                   "falling reward is expected and is not a worse scheduler.",
    "query_loss": "the mean query loss of the selected episodes (batches the model still gets wrong score "
                  "higher). It falls as the model learns.",
}


def meta_training_dashboard(config: Config) -> Dashboard:
    reward = REWARD_MEANINGS.get(config.scheduler.reward, f"the '{config.scheduler.reward}' reward")
    draws = config.eval.final_draws
    sections = (
        ("1. evaluation: test ROC-AUC", (
            Chart("mean test ROC-AUC: periodic (one support draw; the paper protocol reports the best) "
                  f"and final (honest: final model, {draws} draws)", ("eval/auc_mean", "eval/final_auc_mean")),
            Chart("test ROC-AUC of each test property (periodic)", ("eval_task/.*",)),
            Chart("spread of test ROC-AUC across test properties (std, periodic)", ("eval/auc_std",)),
        )),
        ("2. losses", (
            Chart("query loss after adaptation (the outer objective)", ("meta/query_loss",)),
            Chart("support loss before adaptation (the inner loop's start)", ("meta/support_loss",)),
            Chart("NT-Xent contrastive loss between paired subgraphs", ("meta/contrastive_loss",)),
        )),
        ("3. scheduler", (
            Chart(f"reward ({config.scheduler.reward}) and its running-mean baseline",
                  ("scheduler/reward", "scheduler/baseline")),
            Chart("policy entropy against its maximum ln(candidate pairs): at the maximum it picks uniformly",
                  ("scheduler/entropy", "scheduler/entropy_max")),
            Chart("share of recent meta-batches that selected each training property", ("selection/.*",)),
            Chart("advantage and REINFORCE loss", ("scheduler/advantage", "scheduler/policy_loss")),
            Chart("sampling temperature", ("scheduler/temperature",)),
        )),
        ("4. optimisation", (
            Chart("outer gradient norm (before clipping)", ("meta/grad_norm",)),
            Chart("outer learning rate", ("meta/lr",)),
            Chart("outer updates skipped for a non-finite loss (cumulative)", ("meta/skipped_updates",)),
        )),
        ("5. infrastructure", (
            Chart("seconds per meta-iteration and its parts", ("time/.*",)),
            Chart("episodes per second", ("throughput/.*",)),
            Chart("episode workers: healthy, restarts, weight lag", ("workers/healthy", "workers/restarts",
                                                                    "workers/weights_lag")),
            Chart("episode workers: busy seconds per iteration", ("workers/busy_s_.*",)),
        )),
    )
    descriptions = {
        "eval/auc_mean": "Mean ROC-AUC over the test properties at a periodic evaluation, one support draw per "
                         "property. The paper protocol reports the best of these (no validation split).",
        "eval/auc_std": "Standard deviation of the periodic evaluation's ROC-AUC across test properties.",
        "eval/final_auc_mean": f"Honest protocol: the final model's mean test ROC-AUC, each property averaged "
                               f"over {draws} support draws.",
        "eval_task/": "ROC-AUC of one test property at a periodic evaluation (one support draw).",
        "meta/query_loss": "Binary cross-entropy on the query molecules after the inner-loop adaptation, "
                           "averaged over the meta-batch: the outer objective.",
        "meta/support_loss": "Binary cross-entropy on the support molecules before adaptation.",
        "meta/contrastive_loss": "NT-Xent between the two subgraphs of each selected pair.",
        "meta/grad_norm": "Norm of the outer gradient before clipping.",
        "meta/lr": "Outer learning rate.",
        "meta/skipped_updates": "Outer updates skipped because a loss or gradient was not finite (cumulative).",
        "scheduler/reward": f"The scheduler's reward: {reward}",
        "scheduler/baseline": "Mean of the rewards of the iterations before this one, subtracted from the reward "
                              "to form the advantage.",
        "scheduler/advantage": "Reward minus baseline: what the policy-gradient step reinforces.",
        "scheduler/policy_loss": "REINFORCE loss of the selector (-advantage x log-probability of its picks).",
        "scheduler/entropy": "Entropy of the policy's selection weights over the candidate pairs; "
                             "compare with scheduler/entropy_max.",
        "scheduler/entropy_max": "ln(number of candidate pairs): the entropy of picking uniformly.",
        "selection/": "Share of the last run.picture_every meta-batches that selected this training property "
                      "(the diagonal of the co-selection picture, over a moving window).",
        "scheduler/temperature": "Temperature of the selector's softmax at this iteration.",
        "time/": "Wall seconds of one meta-iteration (iteration_s) and its parts: candidate pool, adaptation, "
                 "outer update, weight sync; eval_s is a periodic evaluation.",
        "throughput/": "Episodes (two per selected pair) run per second of meta-iteration.",
        "workers/": "Episode workers: healthy count, restarts after crashes, weight versions behind the "
                    "learner, busy seconds per iteration (mean and max over workers).",
    }
    return Dashboard(sections, descriptions)
