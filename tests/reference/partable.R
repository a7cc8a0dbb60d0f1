# Reference parameter tables for gapscale's lavaanify (analysis/sem/partable.py): lavaan's
# parTable() of cfa()/sem() built on public data (do.fit = FALSE: the table, not the estimates).
# Run from the repository root: Rscript tests/reference/partable.R
# Writes tests/reference/partable.json: per case the model, the options gapscale passes, the
# observed variables of the data (and the categories of ordered items) and lavaan's table.
suppressPackageStartupMessages({library(lavaan); library(jsonlite); library(psych)})
hs <- lavaan::HolzingerSwineford1939
hs$sex <- hs$sex - 1  # 0/1, as a covariate is usually coded
pd <- lavaan::PoliticalDemocracy
bfi <- psych::bfi[1:1000, ]
cols <- c("id", "lhs", "op", "rhs", "user", "block", "group", "free", "ustart", "exo", "label", "plabel")

hs3 <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9"

cases <- list()
add <- function(name, fun, model, data, options = list(), ordered = NULL, ...) {
  fit <- fun(model, data = data, do.fit = FALSE, ordered = ordered, ...)
  pt <- parTable(fit)
  bounds <- intersect(c("lower", "upper"), names(pt))
  for (b in bounds) pt[[b]] <- as.character(pt[[b]])  # keeps -Inf/Inf, which JSON numbers cannot
  nlev <- NULL
  if (!is.null(ordered)) {
    nlev <- lapply(setNames(ordered, ordered), function(v) length(unique(na.omit(data[[v]]))))
  }
  groups <- lavInspect(fit, "group.label")
  cases[[name]] <<- list(model = model, options = options, observed = names(data), ordered = nlev,
                         groups = if (length(groups)) as.list(groups) else NULL,
                         table = pt[, c(cols, bounds)])
}

add("hs3_default", cfa, hs3, hs)
add("hs3_std_lv", cfa, hs3, hs, list(std_lv = TRUE), std.lv = TRUE)
add("hs3_meanstructure", cfa, hs3, hs, list(meanstructure = TRUE), meanstructure = TRUE)
add("hs3_orthogonal", cfa, hs3, hs, list(orthogonal = TRUE), orthogonal = TRUE)

# MIMIC: the three factors on observed covariates (fixed.x: their variances are exo rows).
add("mimic", sem, paste(hs3, "visual + textual + speed ~ sex + ageyr", sep = "\n"), hs)
add("mimic_meanstructure", sem, paste(hs3, "visual ~ sex + ageyr\nspeed ~ ageyr", sep = "\n"), hs,
    list(meanstructure = TRUE), meanstructure = TRUE)
add("mimic_fixed_x_false", sem, paste(hs3, "visual + textual ~ sex + ageyr", sep = "\n"), hs,
    list(fixed_x = FALSE), fixed.x = FALSE)

# Political Democracy (Bollen, 1989), as in lavaan's tutorial, with labels and a := effect.
poldem <- "ind60 =~ x1 + x2 + x3
dem60 =~ y1 + a*y2 + b*y3 + c*y4
dem65 =~ y5 + a*y6 + b*y7 + c*y8
dem60 ~ a1*ind60
dem65 ~ c1*ind60 + b1*dem60
y1 ~~ y5
y2 ~~ y4 + y6
y3 ~~ y7
y4 ~~ y8
y6 ~~ y8
ind := a1*b1
total := c1 + a1*b1"
add("poldem_labels_defined", sem, poldem, pd)

# An observed-variable path model: regressions among observed variables and exogenous x.
add("path_observed", sem, "y1 ~ x1 + x2\ny5 ~ y1 + x1\ny2 ~ y1\ny2 ~~ y5", pd)

# Intercepts, fixed and start values, bounds, and == / < / > constraints with arithmetic.
constrained <- "visual =~ x1 + v2*x2 + v3*x3
textual =~ x4 + start(1.1)*x5 + t6*x6
speed =~ NA*x7 + s8*x8 + s9*x9 + 1*x9
speed ~~ 1*speed
x1 ~ i1*1
x2 ~ i2*1
x4 ~ 0*1
visual ~ 0.5*1
x3 ~~ 0.4*x3
v2 == 2*v3
s8 + s9 == 1
t6 > 0
i1 == i2
v3 < 2
d := v2 - v3"
add("constraints_intercepts", cfa, constrained, hs)

# Two groups: group.equal loadings + intercepts, group.partial, group-wise modifiers.
add("two_group_equal", cfa, hs3, hs, list(group = "school", group_equal = c("loadings", "intercepts"),
                                          group_partial = c("visual =~ x2", "x3 ~ 1")),
    group = "school", group.equal = c("loadings", "intercepts"),
    group.partial = c("visual =~ x2", "x3 ~ 1"))
add("two_group_modifiers", cfa, "visual =~ x1 + c(l2a, l2b)*x2 + c(l3, l3)*x3
textual =~ x4 + c(1, NA)*x5 + x6
speed =~ x7 + x8 + lab9*x9
x1 ~ c(0, NA)*1
x7 ~~ c(v7a, v7b)*x7
l2a == l2b", hs, list(group = "school"), group = "school")
add("two_group_std_lv_all", cfa, hs3, hs,
    list(group = "school", std_lv = TRUE,
         group_equal = c("loadings", "intercepts", "residuals", "lv.variances", "lv.covariances", "means")),
    group = "school", std.lv = TRUE,
    group.equal = c("loadings", "intercepts", "residuals", "lv.variances", "lv.covariances", "means"))

# Ordered items (WLSMV): thresholds, delta (~*~) rows, fixed residual variances.
bfi_model <- "agree =~ A1 + A2 + A3 + A4 + A5
consc =~ C1 + C2 + C3 + C4 + C5
consc ~ agree"
add("ordered_wlsmv", cfa, bfi_model, bfi[, c(paste0("A", 1:5), paste0("C", 1:5))],
    list(estimator = "WLSMV"), ordered = c(paste0("A", 1:5), paste0("C", 1:5)), estimator = "WLSMV")
add("ordered_partial_thresholds", cfa, paste(bfi_model, "A1 | a1*t1 + t2 + 0*t3", sep = "\n"),
    bfi[, c(paste0("A", 1:5), paste0("C", 1:5))],
    list(estimator = "WLSMV"), ordered = c(paste0("A", 1:5), paste0("C", 1:5)), estimator = "WLSMV")
bfi2 <- bfi[, c(paste0("A", 1:5), "gender")]
add("ordered_two_group_thresholds", cfa, "agree =~ A1 + A2 + A3 + A4 + A5", bfi2,
    list(estimator = "WLSMV", group = "gender", group_equal = c("thresholds", "loadings")),
    ordered = paste0("A", 1:5), estimator = "WLSMV", group = "gender",
    group.equal = c("thresholds", "loadings"))

add("ordered_two_group_theta", cfa, "agree =~ A1 + A2 + A3 + A4 + A5", bfi2,
    list(estimator = "WLSMV", group = "gender", group_equal = c("thresholds", "loadings", "intercepts"),
         parameterization = "theta"),
    ordered = paste0("A", 1:5), estimator = "WLSMV", group = "gender",
    group.equal = c("thresholds", "loadings", "intercepts"), parameterization = "theta")

# Ordered items with an observed covariate: lavaan's conditional.x (exo regressions).
bfi3 <- bfi[, c(paste0("A", 1:5), "age")]
add("ordered_covariate", sem, "agree =~ A1 + A2 + A3 + A4 + A5\nagree ~ age", bfi3,
    list(estimator = "WLSMV"), ordered = paste0("A", 1:5), estimator = "WLSMV")

# Per-group statements in group: blocks.
add("group_blocks", cfa, "group: Pasteur
visual =~ x1 + a*x2 + x3
textual =~ x4 + x5 + x6
group: Grant-White
visual =~ x1 + b*x2 + x3
textual =~ x4 + x5 + x6
x1 ~~ x4", hs, list(group = "school"), group = "school")

# Edge cases of the defaults.
add("edge_single_indicator_and_orphans", sem, "visual =~ x1 + x2 + x3
single =~ x4
speed =~ x7 + x8 + x9
speed ~~ visual
x5 ~~ x6
visual ~ ageyr
ageyr ~~ ageyr", hs)
add("edge_shared_label_with_fixed", cfa, "visual =~ a*x1 + a*x2 + x3\ntextual =~ NA*x4 + x5 + x6\ntextual ~~ 1*textual", hs)
add("edge_std_lv_second_order", cfa, "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9
g =~ visual + textual + speed", hs, list(std_lv = TRUE), std.lv = TRUE)
add("edge_two_group_loadings_std_lv_mimic", sem, paste(hs3, "visual ~ sex\nx1 ~~ x4", sep = "\n"), hs,
    list(group = "school", std_lv = TRUE, group_equal = c("loadings", "regressions", "residual.covariances")),
    group = "school", std.lv = TRUE, group.equal = c("loadings", "regressions", "residual.covariances"))
add("edge_orthogonal_user_cov", cfa, paste(hs3, "visual ~~ speed", sep = "\n"), hs, list(orthogonal = TRUE),
    orthogonal = TRUE)
add("edge_observed_covs_and_means", sem, "y1 ~ x1 + x2\nx1 ~~ x2\ny1 ~ 1\ny2 ~~ y1", pd)

# label(), equal(), the 0.8? start syntax, a repeated term, bounds.
add("modifiers_misc", cfa, "visual =~ x1 + label(\"v2\")*x2 + equal(\"v2\")*x3
textual =~ x4 + 0.8?x5 + x6 + start(0.9)*x6 + t6*x6
speed =~ x7 + x8 + x9
x7 ~~ lower(0.1)*x7
x8 ~~ upper(2)*x8", hs)

# A formative composite.
add("composite", sem, "visual =~ x1 + x2 + x3
speed =~ x7 + x8 + x9
comp <~ 1*x4 + x5 + x6
comp ~ visual
speed ~ comp", hs)

# The default study's model (second-order IM, serial mediation, := effects), on column names only.
sg <- paste(readLines("instrument/sustainability_gap.lavaan"), collapse = "\n")
sg_vars <- unique(lavaan::lavNames(lavaanify(sg), "ov"))
set.seed(1)
sg_data <- as.data.frame(matrix(rnorm(200 * length(sg_vars)), ncol = length(sg_vars),
                                dimnames = list(NULL, sg_vars)))
add("sustainability_gap", sem, sg, sg_data)

writeLines(toJSON(list(lavaan_version = as.character(packageVersion("lavaan")), cases = cases),
                  digits = NA, auto_unbox = TRUE, na = "null", null = "null", dataframe = "columns"),
           "tests/reference/partable.json")
