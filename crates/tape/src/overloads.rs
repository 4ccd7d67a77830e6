//! Operator overloading: `&a + &b`, `&a * 2.0`, `1.0 - &a`, `-&a`, for owned
//! and borrowed `Var`s. A shape mismatch panics with the op's message at the
//! caller's line; use the `try_` methods to get a `Result` instead.

use crate::element::Element;
use crate::error::or_panic;
use crate::var::Var;
use std::ops::{Add, Div, Mul, Neg, Sub};

macro_rules! var_binary {
    ($trait:ident, $method:ident, $try:ident, $scalar:expr) => {
        impl<T: Element> $trait<&Var<T>> for &Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: &Var<T>) -> Var<T> {
                or_panic(self.$try(rhs))
            }
        }
        impl<T: Element> $trait<Var<T>> for Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: Var<T>) -> Var<T> {
                or_panic((&self).$try(&rhs))
            }
        }
        impl<T: Element> $trait<&Var<T>> for Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: &Var<T>) -> Var<T> {
                or_panic((&self).$try(rhs))
            }
        }
        impl<T: Element> $trait<Var<T>> for &Var<T> {
            type Output = Var<T>;
            #[track_caller]
            fn $method(self, rhs: Var<T>) -> Var<T> {
                or_panic(self.$try(&rhs))
            }
        }
        impl<T: Element> $trait<T> for &Var<T> {
            type Output = Var<T>;
            fn $method(self, c: T) -> Var<T> {
                let f: fn(&Var<T>, T) -> Var<T> = $scalar;
                f(self, c)
            }
        }
        impl<T: Element> $trait<T> for Var<T> {
            type Output = Var<T>;
            fn $method(self, c: T) -> Var<T> {
                let f: fn(&Var<T>, T) -> Var<T> = $scalar;
                f(&self, c)
            }
        }
    };
}

var_binary!(Add, add, try_add, |v, c| v.add_scalar(c));
var_binary!(Sub, sub, try_sub, |v, c| v.add_scalar(-c));
var_binary!(Mul, mul, try_mul, |v, c| v.mul_scalar(c));
var_binary!(Div, div, try_div, |v, c| v.mul_scalar(T::one() / c));

macro_rules! scalar_lhs {
    ($($t:ty),*) => {$(
        impl Add<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn add(self, v: &Var<$t>) -> Var<$t> { v.add_scalar(self) }
        }
        impl Add<Var<$t>> for $t {
            type Output = Var<$t>;
            fn add(self, v: Var<$t>) -> Var<$t> { v.add_scalar(self) }
        }
        impl Sub<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn sub(self, v: &Var<$t>) -> Var<$t> { v.rsub_scalar(self) }
        }
        impl Sub<Var<$t>> for $t {
            type Output = Var<$t>;
            fn sub(self, v: Var<$t>) -> Var<$t> { v.rsub_scalar(self) }
        }
        impl Mul<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn mul(self, v: &Var<$t>) -> Var<$t> { v.mul_scalar(self) }
        }
        impl Mul<Var<$t>> for $t {
            type Output = Var<$t>;
            fn mul(self, v: Var<$t>) -> Var<$t> { v.mul_scalar(self) }
        }
        impl Div<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn div(self, v: &Var<$t>) -> Var<$t> { v.rdiv_scalar(self) }
        }
        impl Div<Var<$t>> for $t {
            type Output = Var<$t>;
            fn div(self, v: Var<$t>) -> Var<$t> { v.rdiv_scalar(self) }
        }
    )*};
}
scalar_lhs!(f32, f64);

impl<T: Element> Neg for &Var<T> {
    type Output = Var<T>;
    fn neg(self) -> Var<T> {
        Var::neg(self)
    }
}

impl<T: Element> Neg for Var<T> {
    type Output = Var<T>;
    fn neg(self) -> Var<T> {
        Var::neg(&self)
    }
}
