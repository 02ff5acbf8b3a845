"""Small number-theory helpers: prime sieve, modular exponentiation, modular inverse."""
from __future__ import annotations


def sieve(n: int) -> list[int]:
    """Return all primes p <= n using the sieve of Eratosthenes (O(n log log n))."""
    if n < 2:
        return []
    is_prime = bytearray([1]) * (n + 1)
    is_prime[0] = is_prime[1] = 0
    p = 2
    while p * p <= n:
        if is_prime[p]:
            # multiples below p*p were already crossed out by smaller primes
            is_prime[p * p :: p] = bytearray(len(range(p * p, n + 1, p)))
        p += 1
    return [i for i, flag in enumerate(is_prime) if flag]


def pow_mod(base: int, exp: int, mod: int) -> int:
    """Compute base**exp % mod by repeated squaring: O(log exp) multiplications."""
    if mod == 1:
        return 0
    result, base = 1, base % mod
    while exp > 0:
        if exp & 1:
            result = result * base % mod
        base = base * base % mod
        exp >>= 1
    return result


def egcd(a: int, b: int) -> tuple[int, int, int]:
    """Extended Euclid: return (g, x, y) with a*x + b*y == g == gcd(a, b)."""
    x0, y0, x1, y1 = 1, 0, 0, 1
    while b:
        q, a, b = a // b, b, a % b
        x0, x1 = x1, x0 - q * x1
        y0, y1 = y1, y0 - q * y1
    return a, x0, y0


def inverse_mod(a: int, m: int) -> int:
    """Multiplicative inverse of a modulo m; raises ValueError when gcd(a, m) != 1."""
    g, x, _ = egcd(a, m)
    if g != 1:
        raise ValueError(f"{a} has no inverse modulo {m}")
    return x % m


def is_probable_prime(n: int, bases: tuple[int, ...] = (2, 3, 5, 7, 11, 13, 17)) -> bool:
    """Miller-Rabin test; deterministic for n < 3.4e14 with these bases."""
    if n < 2:
        return False
    for p in bases:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in bases:
        x = pow_mod(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


if __name__ == "__main__":
    primes = sieve(100)
    print(len(primes), primes[-5:])          # 25 [73, 79, 83, 89, 97]
    print(pow_mod(3, 100, 7))                 # Fermat: 3^6 = 1 mod 7, so 3^100 = 3^4 = 4
    print(inverse_mod(17, 43))                # 38
    print(is_probable_prime(2**31 - 1))       # True, a Mersenne prime
