//! Site policy (step 6 of `spec/jobseal.md`): the policy file, ban lists
//! re-read when they change, and the decision they make on a verified job.
#![forbid(unsafe_code)]
