"""Dense linear algebra in pure Python: Gaussian elimination with partial pivoting."""
from __future__ import annotations

Matrix = list[list[float]]


def solve(a: Matrix, b: list[float], tol: float = 1e-12) -> list[float]:
    """Solve A x = b for square A. Raises ValueError if A is (numerically) singular."""
    n = len(a)
    # augmented matrix [A | b], copied so the caller's data is untouched
    m = [list(map(float, row)) + [float(rhs)] for row, rhs in zip(a, b)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < tol:
            raise ValueError("matrix is singular")
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            factor = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= factor * m[col][c]
    # back substitution on the upper-triangular system
    x = [0.0] * n
    for i in reversed(range(n)):
        s = sum(m[i][j] * x[j] for j in range(i + 1, n))
        x[i] = (m[i][n] - s) / m[i][i]
    return x


def determinant(a: Matrix) -> float:
    """Determinant as the signed product of the pivots."""
    n = len(a)
    m = [list(map(float, row)) for row in a]
    det = 1.0
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if m[pivot][col] == 0:
            return 0.0
        if pivot != col:
            m[col], m[pivot] = m[pivot], m[col]
            det = -det
        det *= m[col][col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n):
                m[r][c] -= f * m[col][c]
    return det


def matmul(a: Matrix, b: Matrix) -> Matrix:
    """Matrix product; entry (i, j) is the dot product of row i of a and column j of b."""
    cols = list(zip(*b))
    return [[sum(x * y for x, y in zip(row, col)) for col in cols] for row in a]


if __name__ == "__main__":
    A = [[2, 1, 1], [4, -6, 0], [-2, 7, 2]]
    print(solve(A, [5, -2, 9]))     # [1.0, 1.0, 2.0]
    print(determinant(A))           # -16.0
