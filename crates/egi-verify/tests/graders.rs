//! Answer styles that strong math graders accept, by category (issue 17's list), each with
//! near-misses that must stay wrong. `Y`: the pair is equivalent and must be `Correct`;
//! `N`: it is not, and must be anything but `Correct`. The policy these cases pin down is
//! written in the crate docs (`egi_verify`, "Policy").

use egi_verify::{verify, Options, Status};

const Y: bool = true;
const N: bool = false;

type Case = (&'static str, &'static str, bool);

#[rustfmt::skip]
const INLINE_MATH: &[Case] = &[
    // answers in $...$, \(...\), \[...\] with no \boxed
    ("So the probability is $\\frac{3}{4}$.", "\\frac34", Y),
    ("So the probability is $\\frac{3}{4}$.", "\\frac43", N),
    ("Therefore, $x = 5$.", "5", Y),
    ("Therefore, $x = 6$.", "5", N),
    ("The area of the triangle is \\(12\\sqrt{3}\\).", "12\\sqrt3", Y),
    ("The area of the triangle is \\(12\\sqrt{2}\\).", "12\\sqrt3", N),
    ("Putting it together:\n\\[\n\\frac{\\pi}{6}\n\\]", "\\frac{\\pi}{6}", Y),
    ("Putting it together:\n\\[\n\\frac{\\pi}{3}\n\\]", "\\frac{\\pi}{6}", N),
    ("Hence the sum equals $2^{10} - 1$.", "1023", Y),
    ("Hence the sum equals $2^{10} + 1$.", "1023", N),
    ("We get $\\sqrt{2}/2$ as the final value.", "\\frac{\\sqrt2}{2}", Y),
    ("So $a + b = 7$.", "7", Y),
    ("So $a + b = 8$.", "7", N),
    ("The radius is $r = \\dfrac{5}{2}$ units.", "2.5", Y),
    ("The radius is $r = \\dfrac{5}{3}$ units.", "2.5", N),
    ("Final Answer: The final answer is $10,455$. I hope it is correct.", "10455", Y),
    ("Final Answer: The final answer is $10,456$. I hope it is correct.", "10455", N),
    ("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", "0.5", Y),
    ("Final Answer: The final answer is $(2,-1)$. I hope it is correct.", "(2,-1)", Y),
    ("Final Answer: The final answer is $(2,-1)$. I hope it is correct.", "(-1,2)", N),
    ("Final Answer: The final answer is $3\\sqrt{2}$. I hope it is correct.", "3\\sqrt{2}", Y),
    ("Final Answer: The final answer is 17. I hope it is correct.", "17", Y),
    ("Final Answer: The final answer is 17. I hope it is correct.", "71", N),
    ("The largest $n$ is 34.", "34", Y),
    ("The largest $n$ is 34.", "43", N),
    ("Jane started 3 hours ago.", "3", Y),
    ("Jane started 3 hours ago.", "4", N),
    ("The smallest such $k$ is $k=12$.", "12", Y),
    ("Thus the number of ways is $\\binom{6}{2} = 15$.", "15", Y),
    ("Thus the number of ways is $\\binom{6}{2} = 15$.", "6", N),
    ("Since $f(2) = 9$, the value of $f(3)$ is $16$.", "16", Y),
    ("Since $f(2) = 9$, the value of $f(3)$ is $16$.", "9", N),
    ("The answer is \\(\\frac{7}{12}\\).", "\\frac{7}{12}", Y),
    ("The answer is \\(\\frac{7}{12}\\).", "\\frac{5}{12}", N),
    ("We conclude that $\\angle ABC = 40^\\circ$.", "40", Y),
    ("We conclude that $\\angle ABC = 50^\\circ$.", "40", N),
    ("The distance is therefore $\\sqrt{41}$.", "\\sqrt{41}", Y),
    ("The distance is therefore $\\sqrt{41}$.", "41", N),
    // stray chat tokens after the answer
    ("The answer is 42.<|im_end|>\n<|im_start|>user\nWhat is 6 times 9?<|im_end|>", "42", Y),
    ("She has 12 apples left.<|im_end|><|im_start|>user\nNow 13 more", "12", Y),
    ("She has 12 apples left.<|im_end|><|im_start|>user\nNow 13 more", "13", N),
    ("So the total is $48$.<|endoftext|>Human: what is 50?", "48", Y),
    ("So the total is $48$.<|endoftext|>Human: what is 50?", "50", N),
    ("Therefore 7 cookies.<|eot_id|><|start_header_id|>user<|end_header_id|> 8", "7", Y),
    ("The result is 9.</s><s>[INST] 10 [/INST]", "9", Y),
    // R1-style outputs
    ("<think>\nLet me compute 3*4 = 12, maybe 13?\n</think>\nThe answer is $12$.", "12", Y),
    ("<think>\nLet me compute 3*4 = 12, maybe 13?\n</think>\nThe answer is $12$.", "13", N),
    ("<think>7 + 5 = 12</think>\n\nSo Tom has **12** marbles.", "12", Y),
    ("<think>7 + 5 = 12</think>\n\nSo Tom has **12** marbles.", "7", N),
    // the last inline math is only a variable; the number after it is the answer
    ("Let $x$ be the cost. Then $x$ equals 30 dollars.", "30", Y),
    ("The value of $m+n$ is 125.", "125", Y),
    ("The value of $m+n$ is 125.", "126", N),
];

#[rustfmt::skip]
const RELATIONS: &[Case] = &[
    ("\\boxed{x \\geq 3}", "x \\ge 3", Y),
    ("\\boxed{x >= 3}", "x \\geq 3", Y),
    ("\\boxed{x > 3}", "x \\geq 3", N),
    ("\\boxed{x \\gt 3}", "x > 3", Y),
    ("\\boxed{x \\lt 3}", "x < 3", Y),
    ("\\boxed{x < 3}", "x \\leq 3", N),
    ("\\boxed{x \\leq 3}", "x <= 3", Y),
    ("\\boxed{x \\le 3}", "x \\leqslant 3", Y),
    ("\\boxed{x \\neq 2}", "x \\ne 2", Y),
    ("\\boxed{x != 2}", "x \\neq 2", Y),
    ("\\boxed{x \\neq 2}", "x \\neq 3", N),
    ("\\boxed{5 \\geq x}", "x \\leq 5", Y),
    ("\\boxed{5 \\geq x}", "x \\geq 5", N),
    ("\\boxed{3 < x}", "x > 3", Y),
    ("\\boxed{3 < x}", "x < 3", N),
    ("\\boxed{-x > -1}", "x < 1", Y),
    ("\\boxed{-x > -1}", "x > 1", N),
    ("\\boxed{2x \\le 6}", "x \\le 3", Y),
    ("\\boxed{2x \\le 6}", "x \\le 6", N),
    ("\\boxed{-2 < x < 4}", "-2<x<4", Y),
    ("\\boxed{4 > x > -2}", "-2 < x < 4", Y),
    ("\\boxed{-2 \\le x < 4}", "-2 < x < 4", N),
    ("\\boxed{-2 < x \\le 4}", "-2 < x < 4", N),
    ("\\boxed{x \\approx 11}", "11", Y),
    ("\\boxed{x \\approx 11}", "12", N),
    ("The answer is $x \\approx 2.5$.", "2.5", Y),
    ("\\boxed{\\approx 3.14}", "3.14", Y),
    ("\\boxed{x \\geq -\\frac{1}{2}}", "x\\ge -0.5", Y),
    ("\\boxed{x \\geq -\\frac{1}{2}}", "x\\ge 0.5", N),
    ("\\boxed{a > 0}", "a>0", Y),
    ("\\boxed{a > 0}", "b>0", N),
    ("\\boxed{x^2 < 4}", "-2 < x < 2", Y),
    ("\\boxed{x^2 < 4}", "-2 \\le x \\le 2", N),
    ("\\boxed{n \\geq 7}", "n \\ge 7", Y),
    ("\\boxed{n \\geq 7}", "n \\ge 8", N),
    ("\\boxed{x \\ge 1}", "1 \\le x", Y),
    ("\\boxed{t \\leq 10}", "10 \\geq t", Y),
    ("\\boxed{t \\leq 10}", "10 \\leq t", N),
    ("Therefore $x > 5$.", "x > 5", Y),
    ("Therefore $x > 5$.", "x < 5", N),
    // an interval answer to an inequality gold: the same points, accepted
    ("\\boxed{(3, \\infty)}", "x > 3", Y),
    ("\\boxed{[3, \\infty)}", "x > 3", N),
    ("\\boxed{(-\\infty, 5]}", "x \\le 5", Y),
    ("\\boxed{(-\\infty, 5)}", "x \\le 5", N),
    ("\\boxed{[-1, 2)}", "-1 \\le x < 2", Y),
    ("\\boxed{(-1, 2)}", "-1 \\le x < 2", N),
    ("\\boxed{x \\in [2, 7]}", "2 \\le x \\le 7", Y),
    ("\\boxed{(-\\infty,1)\\cup(1,\\infty)}", "x \\neq 1", Y),
    ("\\boxed{(-\\infty,1]\\cup(1,\\infty)}", "x \\neq 1", N),
    ("\\boxed{(-\\infty, -2) \\cup (3, \\infty)}", "x < -2 \\text{ or } x > 3", Y),
    ("\\boxed{[2, 5]}", "x \\geq 2 \\text{ and } x \\leq 5", Y),
    // an inequality answer to an interval gold is not the notation asked for
    // (math-verify's default; the policy table in the crate docs)
    ("\\boxed{x > 3}", "(3, \\infty)", N),
    ("\\boxed{x \\le 5}", "(-\\infty, 5]", N),
    ("\\boxed{-1 \\le x < 2}", "[-1, 2)", N),
    ("\\boxed{x \\neq 1}", "(-\\infty,1)\\cup(1,\\infty)", N),
];

#[rustfmt::skip]
const EQUATIONS: &[Case] = &[
    ("\\boxed{y = 2x + 3}", "2x - y + 3 = 0", Y),
    ("\\boxed{y = 2x + 3}", "2x - y - 3 = 0", N),
    ("\\boxed{y = -\\frac{1}{2}x + 4}", "x + 2y - 8 = 0", Y),
    ("\\boxed{y = -\\frac{1}{2}x + 4}", "x + 2y + 8 = 0", N),
    ("\\boxed{3x + 4y = 12}", "y = -\\frac{3}{4}x + 3", Y),
    ("\\boxed{3x + 4y = 12}", "y = -\\frac{4}{3}x + 3", N),
    ("\\boxed{6x + 8y = 24}", "3x + 4y = 12", Y),
    ("\\boxed{6x + 8y = 25}", "3x + 4y = 12", N),
    ("\\boxed{\\frac{x^2}{4} + \\frac{y^2}{9} = 1}", "9x^2 + 4y^2 = 36", Y),
    ("\\boxed{\\frac{x^2}{9} + \\frac{y^2}{4} = 1}", "9x^2 + 4y^2 = 36", N),
    ("\\boxed{x^2 + y^2 - 4x + 6y - 12 = 0}", "(x-2)^2 + (y+3)^2 = 25", Y),
    ("\\boxed{x^2 + y^2 - 4x + 6y - 12 = 0}", "(x+2)^2 + (y-3)^2 = 25", N),
    ("\\boxed{y^2 = 8x}", "x = \\frac{y^2}{8}", Y),
    ("\\boxed{y^2 = 8x}", "x = \\frac{y^2}{4}", N),
    ("\\boxed{2y = 4x - 6}", "y = 2x - 3", Y),
    ("\\boxed{x - y = 1}", "y - x = -1", Y),
    ("\\boxed{x - y = 1}", "y - x = 1", N),
    ("\\boxed{z = 3x - 2y + 1}", "3x - 2y - z + 1 = 0", Y),
    ("\\boxed{x = 2}", "2 = x", Y),
    ("\\boxed{x = 2}", "x = -2", N),
    ("\\boxed{x^2 = 4}", "x = 2", N),
    ("\\boxed{y = x^2}", "x = y^2", N),
    // chains: the last member is the value
    ("\\boxed{7 + 5 = 12}", "12", Y),
    ("\\boxed{7 + 5 = 12}", "7", N),
    ("So she needs 7 + 5 = 12 more.", "12", Y),
    ("\\boxed{3 \\times 4 = 12}", "12", Y),
    ("\\boxed{3 \\times 4 = 12}", "13", N),
    ("\\boxed{x = 2 + 3 = 5}", "5", Y),
    ("\\boxed{x = 2 + 3 = 5}", "2", N),
    ("The total is $20 + 15 + 10 = 45$.", "45", Y),
    ("The total is $20 + 15 + 10 = 45$.", "20", N),
    ("\\boxed{\\frac{12}{4} = 3}", "3", Y),
    ("\\boxed{120 - 45 = 75 \\text{ dollars}}", "75", Y),
    ("\\boxed{120 - 45 = 75 \\text{ dollars}}", "120", N),
    ("$$\\text{Total} = 6 \\times 7 = 42$$", "42", Y),
    ("\\boxed{a = 3, b = 4}", "a=3, b=4", Y),
    ("\\boxed{a = 3, b = 4}", "a=4, b=3", N),
    ("\\boxed{f(x) = x^2 + 1}", "x^2+1", Y),
    ("\\boxed{f(x) = x^2 + 1}", "x^2-1", N),
    ("\\boxed{k = 4}", "4", Y),
];

#[rustfmt::skip]
const MATRICES: &[Case] = &[
    ("\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", Y),
    ("\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}", "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", N),
    ("\\boxed{\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", Y),
    ("\\boxed{\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", Y),
    ("\\boxed{\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 5 \\end{array}\\right]}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", N),
    ("\\boxed{\\left(\\begin{array}{c} 1 \\\\ -2 \\end{array}\\right)}", "\\begin{pmatrix}1\\\\-2\\end{pmatrix}", Y),
    ("The matrix is $\\begin{pmatrix} 0 & 1 \\\\ -1 & 0 \\end{pmatrix}$.", "\\begin{pmatrix}0&1\\\\-1&0\\end{pmatrix}", Y),
    ("The matrix is $\\begin{pmatrix} 0 & 1 \\\\ -1 & 0 \\end{pmatrix}$.", "\\begin{pmatrix}0&-1\\\\1&0\\end{pmatrix}", N),
    ("Thus \\[\\mathbf{v} = \\begin{pmatrix} 2 \\\\ -1 \\\\ 3 \\end{pmatrix}.\\]", "\\begin{pmatrix}2\\\\-1\\\\3\\end{pmatrix}", Y),
    ("Thus \\[\\mathbf{v} = \\begin{pmatrix} 2 \\\\ -1 \\\\ 3 \\end{pmatrix}.\\]", "\\begin{pmatrix}2\\\\1\\\\3\\end{pmatrix}", N),
    ("\\boxed{\\begin{pmatrix} \\frac{1}{2} & 0 \\\\ 0 & 2 \\end{pmatrix}}", "\\begin{pmatrix}0.5&0\\\\0&2\\end{pmatrix}", Y),
    ("\\boxed{\\begin{pmatrix} \\frac{1}{3x^{2/3}} \\end{pmatrix}}", "\\begin{pmatrix}\\frac{1}{3\\sqrt[3]{x}^2}\\end{pmatrix}", Y),
    ("\\boxed{\\frac{1}{3x^{2/3}}}", "\\frac{1}{3\\sqrt[3]{x}^2}", Y),
    ("\\boxed{\\frac{1}{3x^{1/3}}}", "\\frac{1}{3\\sqrt[3]{x}^2}", N),
    ("\\boxed{\\sqrt[3]{x}^2}", "x^{2/3}", Y),
    ("\\boxed{\\sqrt[3]{x}^2}", "x^{1/9}", N),
    ("\\boxed{\\frac{1}{2}^2}", "\\frac14", Y),
    ("\\boxed{\\left(\\frac{2}{3}\\right)^2}", "\\frac49", Y),
    ("\\boxed{\\begin{pmatrix} x+1 & 2x \\end{pmatrix}}", "\\begin{pmatrix}1+x&x\\cdot 2\\end{pmatrix}", Y),
    ("\\boxed{\\begin{pmatrix} 1 & 2 \\end{pmatrix}}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", N),
    ("\\boxed{\\begin{pmatrix} 3 \\\\ 4 \\end{pmatrix}}", "(3,4)", Y),
    ("\\boxed{\\begin{pmatrix} 3 \\\\ 4 \\end{pmatrix}}", "(4,3)", N),
    ("\\boxed{\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}}", "\\begin{pmatrix}1&0&0\\\\0&1&0\\end{pmatrix}", N),
    ("$\\begin{bmatrix} 2 & 0 \\\\ 0 & 2 \\end{bmatrix}$", "\\begin{pmatrix}2&0\\\\0&2\\end{pmatrix}", Y),
    ("\\boxed{\\begin{vmatrix} 1 & 2 \\\\ 3 & 4 \\end{vmatrix}}", "\\begin{vmatrix}1&2\\\\3&4\\end{vmatrix}", Y),
    ("\\boxed{\\begin{pmatrix} -\\frac{3}{5} \\\\ \\frac{4}{5} \\end{pmatrix}}", "\\begin{pmatrix}-0.6\\\\0.8\\end{pmatrix}", Y),
    ("\\boxed{\\begin{pmatrix} -\\frac{3}{5} \\\\ \\frac{4}{5} \\end{pmatrix}}", "\\begin{pmatrix}0.6\\\\0.8\\end{pmatrix}", N),
    ("\\boxed{\\begin{pmatrix} \\sqrt{2} & 1 \\\\ 1 & \\sqrt{2} \\end{pmatrix}}", "\\begin{pmatrix}\\sqrt2&1\\\\1&\\sqrt2\\end{pmatrix}", Y),
];

#[rustfmt::skip]
const TUPLES_SETS: &[Case] = &[
    ("\\boxed{(3; 2)}", "(3,2)", Y),
    ("\\boxed{(3; 2)}", "(2,3)", N),
    ("\\boxed{(3,2)}", "(2,3)", N),
    ("\\boxed{1; 2; 3}", "1,2,3", Y),
    ("\\boxed{1; 2; 3}", "1,2,4", N),
    ("\\boxed{\\{1, 2, 3\\}}", "\\{3, 2, 1\\}", Y),
    ("\\boxed{\\{1, 2, 3\\}}", "\\{1, 2\\}", N),
    ("\\boxed{\\{1; 2\\}}", "\\{1,2\\}", Y),
    ("\\boxed{\\{-1, 4\\}}", "-1, 4", Y),
    ("\\boxed{\\{-1, 4\\}}", "1, 4", N),
    ("\\boxed{(3,2)}", "(p,q)=(3,2)", Y),
    ("\\boxed{(2,3)}", "(p,q)=(3,2)", N),
    ("\\boxed{(p, q) = (3, 2)}", "(3,2)", Y),
    ("\\boxed{(a,b,c) = (1,2,3)}", "(1,2,3)", Y),
    ("\\boxed{(a,b,c) = (1,3,2)}", "(1,2,3)", N),
    ("\\boxed{(x, y) = (1, -1)}", "(x,y)=(1,-1)", Y),
    ("\\boxed{x = 3, y = 2}", "(3,2)", Y),
    ("\\boxed{x = 2, y = 3}", "(3,2)", N),
    ("The solutions are $\\boxed{2}$ and $\\boxed{5}$.", "2, 5", Y),
    ("The solutions are $\\boxed{2}$ and $\\boxed{5}$.", "2, 6", N),
    ("The roots are \\boxed{-3} and \\boxed{4}.", "-3,4", Y),
    ("The roots are \\boxed{-3}, \\boxed{4}.", "4,-3", Y),
    ("First \\boxed{2} was a guess.\n\nRechecking, the answer is \\boxed{5}.", "5", Y),
    ("First \\boxed{2} was a guess.\n\nRechecking, the answer is \\boxed{5}.", "2, 5", N),
    ("\\boxed{x = 1 \\text{ or } x = 2}", "1, 2", Y),
    ("\\boxed{x = 1 \\text{ or } x = 3}", "1, 2", N),
    ("\\boxed{1, 2}", "\\{1,2\\}", Y),
    ("\\boxed{(1, 2)}", "\\{1,2\\}", N),
    ("\\boxed{(1, 2)}", "[1,2]", N),
    ("\\boxed{(1, 2]}", "(1,2)", N),
    ("\\boxed{[1, 2]}", "[1,2]", Y),
    ("\\boxed{(-\\infty, 0) \\cup (1, \\infty)}", "(1,\\infty)\\cup(-\\infty,0)", Y),
    ("\\boxed{(-\\infty, 0) \\cup [1, \\infty)}", "(-\\infty,0)\\cup(1,\\infty)", N),
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "$\\left( 3, \\frac{\\pi}{2} \\right)$", Y),
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "$\\left( 3, \\frac{\\pi}{3} \\right)$", N),
    ("\\boxed{(1,2), (3,4)}", "(3,4), (1,2)", Y),
    ("\\boxed{(1,2), (3,4)}", "(2,1), (3,4)", N),
    ("\\boxed{\\pm 2}", "2, -2", Y),
    ("\\boxed{\\pm 2}", "2", N),
    ("\\boxed{\\emptyset}", "\\varnothing", Y),
    ("\\boxed{\\{\\}}", "\\emptyset", Y),
    ("\\boxed{\\{0\\}}", "\\emptyset", N),
    ("\\boxed{\\{(1,2)\\}}", "(1,2)", Y),
];

#[rustfmt::skip]
const GOLD_FORMS: &[Case] = &[
    // golds written as LaTeX in $...$
    ("\\boxed{(1,2)}", "$\\left(1, 2\\right)$", Y),
    ("\\boxed{(1,3)}", "$\\left(1, 2\\right)$", N),
    ("\\boxed{\\frac{5}{2}}", "$\\frac{5}{2}$", Y),
    ("\\boxed{\\frac{5}{3}}", "$\\frac{5}{2}$", N),
    ("\\boxed{2\\sqrt{5}}", "\\(2\\sqrt{5}\\)", Y),
    ("\\boxed{\\sqrt{20}}", "$2\\sqrt{5}$", Y),
    ("\\boxed{\\sqrt{21}}", "$2\\sqrt{5}$", N),
    ("\\boxed{[0, 1)}", "$\\left[0, 1\\right)$", Y),
    ("\\boxed{[0, 1]}", "$\\left[0, 1\\right)$", N),
    // thousands separators
    ("\\boxed{10455}", "10,455", Y),
    ("\\boxed{10,455}", "10455", Y),
    ("\\boxed{10456}", "10,455", N),
    ("The answer is 1,000,000.", "1000000", Y),
    ("The answer is 1,000,001.", "1000000", N),
    ("\\boxed{10\\,455}", "10455", Y),
    ("\\boxed{10{,}455}", "10455", Y),
    ("\\boxed{2,500.75}", "2500.75", Y),
    ("\\boxed{2,500.75}", "2500.7", N),
    ("#### 3,600", "3600", Y),
    ("She saved \\$1,250 in total.", "1250", Y),
    ("She saved \\$1,250 in total.", "125", N),
    // percentages
    ("\\boxed{25\\%}", "25", Y),
    ("\\boxed{25\\%}", "0.25", Y),
    ("\\boxed{25\\%}", "2.5", N),
    ("\\boxed{0.25}", "25\\%", Y),
    ("\\boxed{0.35}", "25\\%", N),
    ("The answer is 40%.", "40", Y),
    ("The answer is 40%.", "0.4", Y),
    ("The answer is 40%.", "4", N),
    ("\\boxed{12.5\\%}", "12.5", Y),
    ("\\boxed{12.5 \\text{ percent}}", "12.5", Y),
    ("\\boxed{13.5\\%}", "12.5", N),
    // units and currencies in the gold or the answer
    ("\\boxed{18}", "\\$18", Y),
    ("\\boxed{18}", "18 \\text{ dollars}", Y),
    ("\\boxed{19}", "18 \\text{ dollars}", N),
    ("\\boxed{6 \\text{ cm}^2}", "6", Y),
    ("\\boxed{6 \\, \\text{cm}^2}", "6", Y),
    ("\\boxed{7 \\, \\text{cm}^2}", "6", N),
    ("\\boxed{90^\\circ}", "90", Y),
    ("\\boxed{90^{\\circ}}", "90^\\circ", Y),
    ("\\boxed{\\frac{\\pi}{2}}", "\\frac{\\pi}{2}", Y),
    ("\\boxed{2.5 \\text{ hours}}", "2.5", Y),
    ("\\boxed{2.5 \\text{ hours}}", "25", N),
    ("\\boxed{\\text{(C)}}", "C", Y),
    ("\\boxed{(C)}", "\\text{(C)}", Y),
    ("\\boxed{\\textbf{(C)}}", "C", Y),
    ("\\boxed{\\textbf{(D)}}", "C", N),
];

#[rustfmt::skip]
const SENTENCES: &[Case] = &[
    ("Mia has 12 marbles.", "12", Y),
    ("Mia has 12 marbles.", "21", N),
    ("The answer is: Mia has 12 marbles.", "12", Y),
    ("The answer is: Mia has 12 marbles.", "13", N),
    ("Final answer: Tom runs 15 miles each week.", "15", Y),
    ("Final answer: Tom runs 15 miles each week.", "16", N),
    ("**Answer:** Sarah needs 8 more boxes.", "8", Y),
    ("**Answer:** Sarah needs 8 more boxes.", "9", N),
    ("Answer: The store sold 245 books.", "245", Y),
    ("Answer: The store sold 245 books.", "254", N),
    ("Therefore, the train travels 360 kilometers.", "360", Y),
    ("Therefore, the train travels 360 kilometers.", "36", N),
    ("So John will be 47 years old.", "47", Y),
    ("So John will be 47 years old.", "74", N),
    ("The final answer is 6 apples.", "6", Y),
    ("The final answer is 6 apples.", "5", N),
    ("The answer is $\\$ 4.50$ per pound.", "4.5", Y),
    ("The answer is $\\$ 4.50$ per pound.", "4.05", N),
    ("She paid 3 * 4 = 12 dollars.\nThe answer is 12.", "12", Y),
    ("1. 3 * 4 = 12\n2. 12 + 5 = 17\nSo the answer is 17 eggs.", "17", Y),
    ("1. 3 * 4 = 12\n2. 12 + 5 = 17\nSo the answer is 17 eggs.", "12", N),
    ("Step 1: 50 - 20 = 30\nStep 2: 30 / 3 = 10\nEach friend gets 10 stickers.", "10", Y),
    ("Step 1: 50 - 20 = 30\nStep 2: 30 / 3 = 10\nEach friend gets 10 stickers.", "30", N),
    ("**Final Answer**\n\\[\n\\boxed{72}\n\\]", "72", Y),
    ("**Final Answer**\n\\[\n\\boxed{72}\n\\]", "27", N),
    ("## Final Answer\nThe answer is **54**.", "54", Y),
    ("## Final Answer\nThe answer is **54**.", "45", N),
    ("The answer is 54 (fifty-four).", "54", Y),
    ("The final answer is: $\\boxed{\\text{Tuesday}}$", "\\text{Tuesday}", Y),
    ("The final answer is: $\\boxed{\\text{Tuesday}}$", "\\text{Monday}", N),
    ("The answer is Tuesday.", "\\text{Tuesday}", Y),
    ("The answer is Monday.", "\\text{Tuesday}", N),
];

#[rustfmt::skip]
const COMPETITION: &[Case] = &[
    // AIME / AMC / MATH-500 answer shapes
    ("Therefore the requested remainder is $\\boxed{080}$.", "80", Y),
    ("Therefore the requested remainder is $\\boxed{080}$.", "8", N),
    ("So $m+n=\\boxed{109}$.", "109", Y),
    ("So $m+n=\\boxed{109}$.", "110", N),
    ("\\boxed{\\textbf{(B) }12}", "B", Y),
    ("\\boxed{\\textbf{(B) }12}", "12", Y),
    ("\\boxed{\\textbf{(B) }12}", "C", N),
    ("\\boxed{\\dfrac{14}{3}}", "\\frac{14}{3}", Y),
    ("\\boxed{4\\frac{2}{3}}", "\\frac{14}{3}", Y),
    ("\\boxed{4\\frac{1}{3}}", "\\frac{14}{3}", N),
    ("\\boxed{\\frac{\\sqrt{3}}{3}}", "\\frac{1}{\\sqrt{3}}", Y),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{1}{\\sqrt{3}}", N),
    ("\\boxed{2 - \\sqrt{3}}", "-\\sqrt3 + 2", Y),
    ("\\boxed{2 + \\sqrt{3}}", "-\\sqrt3 + 2", N),
    ("\\boxed{3\\pi}", "3 \\pi", Y),
    ("\\boxed{\\pi^2/6}", "\\frac{\\pi^2}{6}", Y),
    ("\\boxed{(x+1)(x-1)}", "x^2-1", Y),
    ("\\boxed{(x+1)^2}", "x^2-1", N),
    ("\\boxed{e^{i\\pi/4}}", "e^{i\\pi/4}", Y),
    ("\\boxed{\\log_2 8}", "3", Y),
    ("\\boxed{\\log_2 9}", "3", N),
    ("\\boxed{1.5}", "\\frac{3}{2}", Y),
    ("\\boxed{1.6}", "\\frac{3}{2}", N),
    ("\\boxed{-\\frac{7}{2}}", "-3.5", Y),
    ("\\boxed{\\frac{-7}{2}}", "-\\frac72", Y),
    ("\\boxed{\\frac{7}{2}}", "-\\frac72", N),
    ("\\boxed{10^{-3}}", "0.001", Y),
    ("\\boxed{2^{3^2}}", "512", Y),
    ("\\boxed{2^{3^2}}", "64", N),
    ("\\boxed{5!}", "120", Y),
    ("\\boxed{\\binom{5}{2}}", "10", Y),
    ("\\boxed{a^2 + 2ab + b^2}", "(a+b)^2", Y),
    ("\\boxed{a^2 + b^2}", "(a+b)^2", N),
    ("\\boxed{|x|}", "\\left|x\\right|", Y),
    ("\\boxed{x \\in (1, 3]}", "(1,3]", Y),
];

#[rustfmt::skip]
const READINGS: &[Case] = &[
    // decimal commas and spaced numbers
    ("\\boxed{3,75}", "3.75", Y),
    ("\\boxed{3,75}", "375", N),
    ("\\boxed{0,125}", "0.125", Y),
    ("\\boxed{0,125}", "125", N),
    ("\\boxed{2 1/4}", "2.25", Y),
    ("\\boxed{2 1/4}", "21/4", N),
    ("\\boxed{3^2 5^2}", "225", Y),
    ("\\boxed{3^2 5^2}", "3^{25^2}", N),
    // repeating decimals
    ("\\boxed{0.\\overline{3}}", "\\frac13", Y),
    ("\\boxed{0.\\overline{3}}", "0.3", N),
    ("\\boxed{0.1\\overline{6}}", "\\frac16", Y),
    ("\\boxed{1.\\overline{27}}", "\\frac{14}{11}", Y),
    ("\\boxed{1.\\overline{27}}", "1.27", N),
    // decimals for irrational or repeating values
    ("\\boxed{1.4142}", "\\sqrt{2}", Y),
    ("\\boxed{1.41}", "\\sqrt{2}", N),
    ("\\boxed{0.6667}", "\\frac{2}{3}", Y),
    ("\\boxed{0.67}", "\\frac{2}{3}", N),
    ("\\boxed{62.832}", "20\\pi", Y),
    ("\\boxed{62.8}", "20\\pi", N),
    ("\\boxed{12.01}", "12", N),
    ("\\boxed{0.2501}", "\\frac14", N),
    ("\\boxed{\\frac{\\sqrt2}{2} \\approx 0.707}", "\\frac{1}{\\sqrt2}", Y),
    // sets described, the real line
    ("\\boxed{(5, \\infty)}", "\\{x \\mid x > 5\\}", Y),
    ("\\boxed{[5, \\infty)}", "\\{x : x > 5\\}", N),
    ("\\boxed{(-\\infty, \\infty)}", "\\mathbb{R}", Y),
    ("\\boxed{x \\in \\mathbb{R}}", "(-\\infty,\\infty)", Y),
    ("\\boxed{(0, \\infty)}", "\\mathbb{R}", N),
    ("\\boxed{(-1, 1)}", "0 < g(t) < 1", N),
    ("\\boxed{(0, 1)}", "0 < g(t) < 1", Y),
    // matrix arithmetic written out
    ("\\boxed{\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix} + \\begin{pmatrix} 2 & 3 \\\\ 4 & 5 \\end{pmatrix}}", "\\begin{pmatrix}3&3\\\\4&6\\end{pmatrix}", Y),
    ("\\boxed{\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix} + \\begin{pmatrix} 2 & 3 \\\\ 4 & 5 \\end{pmatrix}}", "\\begin{pmatrix}2&3\\\\4&5\\end{pmatrix}", N),
    ("\\boxed{2\\begin{pmatrix} 1 \\\\ -1 \\end{pmatrix}}", "\\begin{pmatrix}2\\\\-2\\end{pmatrix}", Y),
    ("\\boxed{\\begin{pmatrix} 0 & 1 \\\\ 1 & 0 \\end{pmatrix}\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}", "\\begin{pmatrix}3&4\\\\1&2\\end{pmatrix}", Y),
    ("\\boxed{\\begin{pmatrix} 0 & 1 \\\\ 1 & 0 \\end{pmatrix}\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}}", "\\begin{pmatrix}2&1\\\\4&3\\end{pmatrix}", N),
    // names on the left
    ("\\boxed{a + b + c = 24}", "24", Y),
    ("\\boxed{a + b + c = 24}", "25", N),
    ("\\boxed{x^2 = 9}", "9", N),
    ("\\boxed{|PQ| = 13}", "13", Y),
    ("\\boxed{PQ : QR = 2 : 3}", "2:3", Y),
    ("\\boxed{PQ : QR = 2 : 3}", "3:2", N),
    ("\\boxed{g(2) = 11}", "11", Y),
    ("\\boxed{a = 2, b = 1; a = 3, b = 1}", "(2,1),(3,1)", Y),
    ("\\boxed{a = 2, b = 1; a = 3, b = 1}", "(1,2),(3,1)", N),
    ("\\boxed{(4,1),(1,4)}", "(1,4) or (4,1)", Y),
    ("\\boxed{(4,1),(4,1),(1,4)}", "(1,4),(4,1)", Y),
    // answer choices
    ("The answer is D. 3/4", "D", Y),
    ("The answer is D. 3/4", "\\frac34", Y),
    ("The answer is D. 3/4", "B", N),
    // boxes on one line, or not
    ("\\boxed{4} \\quad \\text{and} \\quad \\boxed{9}", "4, 9", Y),
    ("\\boxed{4} \\quad \\text{and} \\quad \\boxed{9}", "4", N),
    ("For $a$ we get \\boxed{6}, and for $b$ \\boxed{8}.", "6,8", Y),
    ("\\boxed{6} maybe, no wait \\boxed{8}", "8", Y),
    ("\\boxed{6} maybe, no wait \\boxed{8}", "6, 8", N),
    ("\\boxed{6} \\boxed{8}", "8", Y),
    ("\\boxed{6}\n\\boxed{8}", "6, 8", N),
    // a final-answer line after the last box
    ("So the sum is \\boxed{40}. Checking again, 40 + 6 = 46. Final Answer: The final answer is $46$. I hope it is correct.", "46", Y),
    ("So the sum is \\boxed{40}. Checking again, 40 + 6 = 46. Final Answer: The final answer is $46$. I hope it is correct.", "40", N),
    ("\\boxed{40}\n\nThe answer is above.", "40", Y),
    // numbers in words or broken math
    ("The code is QX7R.", "7", N),
    ("Result: $ \n 12 \n $", "12", N),
    ("Result: $$ \n 12 \n $$", "12", Y),
    ("The final answer is \"$7$\".", "7", Y),
    // golds that are whole solutions, or escaped twice
    ("\\boxed{15}", "We add the two parts to get the total, so the number of pens is $\\boxed{15}$.", Y),
    ("\\boxed{16}", "We add the two parts to get the total, so the number of pens is $\\boxed{15}$.", N),
    ("\\boxed{\\\\frac{3}{8}}", "0.375", Y),
    ("\\boxed{\\frac{3}{8}}", "$\\\\frac{3}{8}$", Y),
    ("\\boxed{\\frac{3}{8}}", "$\\\\frac{5}{8}$", N),
    ("\\boxed{3 \\\\le y \\\\le 4}", "3 \\le y \\le 4", Y),
];

fn check(name: &str, cases: &[Case]) -> (usize, usize) {
    let opts = Options::default();
    let mut fails = Vec::new();
    for (resp, gold, eq) in cases {
        let v = verify(resp, gold, &opts);
        if (v.status == Status::Correct) != *eq {
            fails.push(format!(
                "  {resp:?} vs {gold:?}: want {} got {:?} (extracted {:?}, norm {:?} / {:?}, rule {:?})",
                if *eq { "correct" } else { "not correct" },
                v.status,
                v.extracted.as_ref().map(|e| &e.text),
                v.answer_normalized,
                v.gold_normalized,
                v.method
            ));
        }
    }
    let pos = cases.iter().filter(|c| c.2).count();
    println!(
        "{name}: {} cases ({pos} equivalent, {} not)",
        cases.len(),
        cases.len() - pos
    );
    assert!(
        fails.is_empty(),
        "{name}: {} of {} failing:\n{}",
        fails.len(),
        cases.len(),
        fails.join("\n")
    );
    (pos, cases.len() - pos)
}

#[test]
fn inline_math_and_sentence_final_answers() {
    check("inline math", INLINE_MATH);
}

#[test]
fn relations_and_inequalities() {
    check("relations", RELATIONS);
}

#[test]
fn equations_up_to_rearrangement_and_chains() {
    check("equations", EQUATIONS);
}

#[test]
fn matrices_and_equal_entries() {
    check("matrices", MATRICES);
}

#[test]
fn tuples_sets_and_several_boxes() {
    check("tuples and sets", TUPLES_SETS);
}

#[test]
fn golds_in_latex_separators_percent_units() {
    check("gold forms", GOLD_FORMS);
}

#[test]
fn sentence_answers() {
    check("sentences", SENTENCES);
}

#[test]
fn competition_answer_shapes() {
    check("competition", COMPETITION);
}

#[test]
fn readings_other_graders_accept() {
    check("readings", READINGS);
}

#[test]
fn at_least_300_cases_with_both_kinds() {
    let all = [
        READINGS,
        INLINE_MATH,
        RELATIONS,
        EQUATIONS,
        MATRICES,
        TUPLES_SETS,
        GOLD_FORMS,
        SENTENCES,
        COMPETITION,
    ];
    let n: usize = all.iter().map(|c| c.len()).sum();
    let neg: usize = all.iter().map(|c| c.iter().filter(|x| !x.2).count()).sum();
    println!("{n} cases, {neg} not equivalent");
    assert!(n >= 300, "{n}");
    assert!(neg >= 100, "{neg}");
}
