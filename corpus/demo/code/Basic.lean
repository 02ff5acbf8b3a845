/-
  Basic.lean — a few elementary facts about natural numbers, proved in Lean 4 (core only).
-/

namespace Demo

/-- Sum of the first `n` odd numbers. -/
def oddSum : Nat → Nat
  | 0 => 0
  | n + 1 => oddSum n + (2 * n + 1)

/-- The sum of the first `n` odd numbers is `n ^ 2`. -/
theorem oddSum_eq_sq (n : Nat) : oddSum n = n * n := by
  induction n with
  | zero => rfl
  | succ k ih =>
    show oddSum k + (2 * k + 1) = (k + 1) * (k + 1)
    rw [ih, Nat.add_mul, Nat.mul_add, Nat.mul_one, Nat.one_mul, Nat.two_mul]
    omega

/-- Addition is commutative (re-proved from the library lemma). -/
theorem add_comm' (a b : Nat) : a + b = b + a := Nat.add_comm a b

/-- Doubling distributes over addition. -/
theorem two_mul_add (a b : Nat) : 2 * (a + b) = 2 * a + 2 * b := by
  rw [Nat.mul_add]

/-- A number below 3 is 0, 1 or 2. -/
theorem lt_three (n : Nat) (h : n < 3) : n = 0 ∨ n = 1 ∨ n = 2 := by
  omega

/-- Twice a number is even, and one more than twice a number is odd. -/
theorem two_mul_mod_two (n : Nat) : (2 * n) % 2 = 0 ∧ (2 * n + 1) % 2 = 1 := by
  constructor <;> omega

end Demo
