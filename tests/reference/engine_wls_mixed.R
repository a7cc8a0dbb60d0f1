# Reference values for the engine's WLSMV/ULSMV with continuous and ordered indicators in one
# model (analysis/sem/ordinal.py's polyserial and Pearson statistics, analysis/sem/wls.py), from
# lavaan 0.6-14 on Holzinger & Swineford with some tests cut into five categories (ordered) and
# the others continuous: lavaan's ordered = c(some items).
# Run from the repository root: Rscript tests/reference/engine_wls_mixed.R
# Writes tests/reference/hs_mixed.csv (the data) and tests/reference/engine_wls_mixed.json.
#
# Models:
#   mixed_cfa_wlsmv   visual (x1-x3 ordered) and textual (x4-x6 continuous), WLSMV;
#   mixed_sem_ulsmv   three factors, x1-x3 and x7-x9 ordered, x4-x6 continuous, textual ~ a*visual,
#                     speed ~ b*textual, ind := a*b, ULSMV;
#   mixed_mg_wlsmv    the CFA across school, thresholds and loadings equal, WLSMV.
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
stopifnot(packageVersion("lavaan") == "0.6.14")

hs <- read.csv("tests/reference/hs_engine.csv")
d <- hs[, c("school", paste0("x", 1:9))]
# five categories cut at the 15/40/65/85% quantiles (every category in both schools)
for (v in c("x1", "x2", "x3", "x7", "x8", "x9")) {
  d[[v]] <- as.integer(cut(d[[v]], breaks = c(-Inf, quantile(d[[v]], c(0.15, 0.4, 0.65, 0.85)), Inf)))
}
write.csv(d, "tests/reference/hs_mixed.csv", row.names = FALSE)

cfa_model <- "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6"
sem_model <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9
textual ~ a*visual
speed ~ b*textual
ind := a*b"
r_warnings <- list()
reference <- function(name, model, ordered, estimator, group = NULL, group.equal = "") {
  fit <- withCallingHandlers(
    sem(model, data = d, ordered = ordered, estimator = estimator, group = group, group.equal = group.equal),
    warning = function(w) {
      r_warnings[[length(r_warnings) + 1L]] <<- paste0(name, ": ", conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  stopifnot(lavInspect(fit, "converged"))
  pe <- parameterEstimates(fit, standardized = TRUE)
  if (is.null(pe$label)) pe$label <- ""
  if (is.null(pe$group)) pe$group <- 1L
  obs <- lavInspect(fit, "wls.obs")
  gam <- lavInspect(fit, "gamma")
  if (is.null(group)) {
    stats <- list(wls_obs = unname(obs), wls_obs_names = names(obs), gamma = unname(gam))
  } else {
    stats <- list()
  }
  c(stats, list(model = model, ordered = ordered, estimator = estimator, group = if (is.null(group)) NA else group,
                group_equal = group.equal, group_labels = lavInspect(fit, "group.label"),
                fit = as.list(fitMeasures(fit)),
                test = lavInspect(fit, "test")[[2]][c("stat", "scaling.factor", "shift.parameter")],
                pe = pe[, c("lhs", "op", "rhs", "group", "label", "est", "se", "z", "pvalue", "std.all")],
                std_all_se = standardizedSolution(fit)$se,
                partable = parTable(fit)[, c("lhs", "op", "rhs", "block", "group", "free", "ustart", "exo", "label",
                                             "plabel")]))
}

out <- list(
  lavaan = as.character(packageVersion("lavaan")),
  mixed_cfa_wlsmv = reference("mixed_cfa_wlsmv", cfa_model, c("x1", "x2", "x3"), "WLSMV"),
  mixed_sem_ulsmv = reference("mixed_sem_ulsmv", sem_model, c("x1", "x2", "x3", "x7", "x8", "x9"), "ULSMV"),
  mixed_mg_wlsmv = reference("mixed_mg_wlsmv", cfa_model, c("x1", "x2", "x3"), "WLSMV", group = "school",
                             group.equal = c("thresholds", "loadings"))
)
out$r_warnings <- r_warnings
write_json(out, "tests/reference/engine_wls_mixed.json", digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE)
