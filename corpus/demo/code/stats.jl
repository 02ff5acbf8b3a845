# stats.jl — descriptive statistics and a bootstrap confidence interval in plain Julia.
using Random

"""
    mean_var(x)

Return the sample mean and the unbiased sample variance ``s^2 = \\frac{1}{n-1}\\sum_i (x_i - \\bar x)^2``
using Welford's single-pass update, which is numerically stable.
"""
function mean_var(x::AbstractVector{<:Real})
    n, μ, m2 = 0, 0.0, 0.0
    for xi in x
        n += 1
        δ = xi - μ
        μ += δ / n
        m2 += δ * (xi - μ)
    end
    n < 2 && return μ, NaN
    return μ, m2 / (n - 1)
end

"""
    bootstrap_ci(x; B=2000, level=0.95)

Percentile bootstrap interval for the mean: resample `x` with replacement `B` times.
"""
function bootstrap_ci(x::AbstractVector{<:Real}; B::Int=2000, level::Float64=0.95, rng=MersenneTwister(42))
    n = length(x)
    means = [sum(x[rand(rng, 1:n, n)]) / n for _ in 1:B]
    sort!(means)
    α = (1 - level) / 2
    return means[max(1, floor(Int, α * B))], means[ceil(Int, (1 - α) * B)]
end

# correlation coefficient r = cov(x, y) / (s_x s_y)
function pearson(x, y)
    mx, vx = mean_var(x)
    my, vy = mean_var(y)
    c = sum((x .- mx) .* (y .- my)) / (length(x) - 1)
    return c / sqrt(vx * vy)
end

if abspath(PROGRAM_FILE) == @__FILE__
    data = [2.1, 3.4, 1.9, 5.6, 4.4, 3.8, 2.7, 4.9]
    μ, s2 = mean_var(data)
    println("mean = $(round(μ, digits=3)), variance = $(round(s2, digits=3))")
    println("95% bootstrap CI: ", bootstrap_ci(data))
    println("r = ", pearson(data, 2 .* data .+ 1))   # exactly 1 for a linear relation
end
