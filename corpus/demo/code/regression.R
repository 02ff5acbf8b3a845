# regression.R -- ordinary least squares by the normal equations, checked against lm().
#
# For a design matrix X (n x p) and response y, the OLS estimate solves
#   (X^T X) beta = X^T y,
# and the residual variance is estimated by sigma^2 = RSS / (n - p).

ols <- function(X, y) {
  XtX <- crossprod(X)          # t(X) %*% X
  Xty <- crossprod(X, y)
  beta <- solve(XtX, Xty)
  resid <- y - X %*% beta
  sigma2 <- sum(resid^2) / (nrow(X) - ncol(X))
  se <- sqrt(diag(sigma2 * solve(XtX)))
  list(coef = drop(beta), se = se, r2 = 1 - sum(resid^2) / sum((y - mean(y))^2))
}

set.seed(1)
n <- 200
x <- runif(n, 0, 10)
y <- 1.5 + 0.8 * x + rnorm(n, sd = 1.2)   # true intercept 1.5, slope 0.8

X <- cbind(1, x)
fit <- ols(X, y)
print(round(fit$coef, 3))
print(round(fit$se, 4))
cat(sprintf("R^2 = %.3f\n", fit$r2))

# the built-in fit should agree to numerical precision
stopifnot(all.equal(unname(coef(lm(y ~ x))), unname(fit$coef)))
