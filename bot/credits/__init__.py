"""Credits: the periods they reset on, the rules (limits, bonus, bans, the running-jobs cap), the settlement of a
job's credits (reserve, commit, refund) and the moderators' audited actions. ``QuotaService`` puts them together."""
