//! Table of (response, gold, expected status) in the answer styles of GSM8K,
//! MATH-500, AIME and AMC, plus extraction and option cases.

use egi_verify::{
    extract_answer, gold_from_record, verify, verify_any, ExtractMethod, Options, Status,
};

const C: Status = Status::Correct;
const W: Status = Status::Wrong;
const UA: Status = Status::UnparsableAnswer;
const UG: Status = Status::UnparsableGold;

#[rustfmt::skip]
const CASES: &[(&str, &str, Status)] = &[
    // ---------------- GSM8K style ----------------
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18", C),
    ("#### 18", "18", C),
    ("#### 17", "18", W),
    ("The answer is 18.", "18", C),
    ("The answer is $18.", "18", C),
    ("The answer is 18 dollars.", "18", C),
    ("The answer is 18 eggs.", "18", C),
    ("So she makes 18 dollars a day.", "18", C),
    ("So she makes 19 dollars a day.", "18", W),
    ("\\boxed{18}", "18", C),
    ("\\boxed{\\$18}", "18", C),
    ("\\boxed{18.00}", "18", C),
    ("\\boxed{18.0}", "18", C),
    ("\\boxed{18.5}", "18", W),
    ("The total is 70,000.\n#### 70000", "70000", C),
    ("#### 70,000", "70000", C),
    ("\\boxed{70,000}", "70000", C),
    ("\\boxed{70{,}000}", "70000", C),
    ("\\boxed{70,\\!000}", "70000", C),
    ("The profit is $70,000.", "70000", C),
    ("The profit is $70,001.", "70000", W),
    ("Final answer: 1,450,000", "1450000", C),
    ("Final answer: 1,450,001", "1450000", W),
    ("He runs 540 meters a week.\n#### 540", "540", C),
    ("\\boxed{540 \\text{ meters}}", "540", C),
    ("\\boxed{540\\text{m}}", "540", C),
    ("\\boxed{20}", "20", C),
    ("\\boxed{20\\%}", "20", C),
    ("\\boxed{20 \\%}", "20", C),
    ("The answer is 20%.", "20", C),
    ("\\boxed{25\\%}", "20", W),
    ("The answer is: 64", "64", C),
    ("**Final Answer:** 64", "64", C),
    ("The final answer is $\\boxed{64}$.", "64", C),
    ("The final answer is $\\boxed{65}$.", "64", W),
    ("3 + 4 = 7 apples, then 7 * 2 = 14", "14", C),
    ("3 + 4 = 7 apples, then 7 * 2 = 14", "7", W),
    ("Janet has 5 ducks. She has 10 eggs.", "10", C),
    ("It costs $2.50 per egg, so 2.5", "2.5", C),
    ("\\boxed{2.50}", "2.5", C),
    ("\\boxed{\\$2.50}", "2.5", C),
    ("\\boxed{0.5}", "0.50", C),
    ("\\boxed{.5}", "0.5", C),
    ("\\boxed{-5}", "-5", C),
    ("\\boxed{5}", "-5", W),
    ("#### -3", "-3", C),
    ("\\boxed{3}", "-3", W),
    ("The answer is five.", "5", C),
    ("\\boxed{five}", "5", C),
    ("\\boxed{twenty-one}", "21", C),
    ("\\boxed{six}", "5", W),
    ("Therefore the answer is 1,234.", "1234", C),
    ("#### 1234", "1,234", C),
    ("\\boxed{1234}", "1,234", C),
    ("\\boxed{1235}", "1,234", W),
    ("\\boxed{\\$1,234.50}", "1234.5", C),
    ("There were 12 cookies left.", "12", C),
    ("There were 13 cookies left.", "12", W),
    ("No number here at all", "12", UA),
    ("", "12", UA),
    ("   ", "12", UA),
    ("\\boxed{10}", "10.0", C),
    ("\\boxed{100}", "10^2", C),
    ("\\boxed{3}", "", UG),
    ("\\boxed{3}", "   ", UG),
    ("\\boxed{3}", "\\frac{1}{", UG),
    ("\\boxed{3}", "(1,2", UG),
    ("\\boxed{3}", "5 ++", UG),
    ("\\boxed{\\frac{1}{}", "3", W),
    ("\\boxed{(1,2}", "3", UA),
    ("\\boxed{5 ++}", "3", UA),
    ("\\boxed{@@@}", "3", UA),
    ("\\boxed{x^{}}", "3", UA),
    // a chain is its last member, true or not (as math-verify reads it)
    ("\\boxed{1 = 2 = 3}", "3", C),
    ("\\boxed{1 = 2 = 3}", "1", W),
    ("Janet\u{2019}s ducks: 16 - 3 - 4 = 9; 9 * 2 = 18\n#### 18", "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 18", C),
    ("#### 17", "Janet sells 9 eggs.\n#### 18", W),
    ("#### 1,600", "#### 1,600", C),
    ("The answer is 600 students.", "600", C),
    ("She needs 3 more hours", "3", C),
    ("\\boxed{3 \\text{ hours}}", "3", C),
    ("\\boxed{3\\ \\text{hours}}", "3", C),
    ("\\boxed{\\text{3 hours}}", "3", C),
    ("\\boxed{4 \\text{ hours}}", "3", W),
    ("#### 26", "26", C),
    ("#### 26.", "26", C),
    ("#### $26", "26", C),
    ("answer: 26", "26", C),
    ("Answer: 27", "26", W),
    ("\\boxed{52}", "52", C),
    ("\\boxed{0}", "0", C),
    ("\\boxed{0.0}", "0", C),
    ("\\boxed{0.001}", "0", W),
    ("\\boxed{-0}", "0", C),
    // ---------------- MATH-500 style: fractions / decimals / radicals ----------------
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", C),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", C),
    ("\\boxed{\\tfrac{1}{2}}", "\\frac{1}{2}", C),
    ("\\boxed{\\frac12}", "\\frac{1}{2}", C),
    ("\\boxed{\\frac 12}", "\\frac{1}{2}", C),
    ("\\boxed{1/2}", "\\frac{1}{2}", C),
    ("\\boxed{0.5}", "\\frac{1}{2}", C),
    ("\\boxed{2/4}", "\\frac{1}{2}", C),
    ("\\boxed{\\frac{2}{4}}", "\\frac{1}{2}", C),
    ("\\boxed{\\frac{1}{3}}", "\\frac{1}{2}", W),
    ("\\boxed{0.333333333}", "\\frac{1}{3}", C),
    ("\\boxed{0.33}", "\\frac{1}{3}", W),
    ("\\boxed{\\frac{9}{19}}", "\\frac9{19}", C),
    ("\\boxed{\\frac{3}{4}}", "\\frac 34", C),
    ("\\boxed{\\frac{5}{9}}", "\\frac 59", C),
    ("\\boxed{\\frac{4}{5}}", "\\frac 59", W),
    ("\\boxed{\\frac{17}{50}}", "\\dfrac{17}{50}", C),
    ("\\boxed{0.34}", "\\dfrac{17}{50}", C),
    ("\\boxed{\\frac{33}{100}}", "\\dfrac{33}{100}", C),
    ("\\boxed{-\\frac{24}{25}}", "-\\frac{24}{25}", C),
    ("\\boxed{\\frac{-24}{25}}", "-\\frac{24}{25}", C),
    ("\\boxed{-0.96}", "-\\frac{24}{25}", C),
    ("\\boxed{\\frac{24}{25}}", "-\\frac{24}{25}", W),
    ("\\boxed{-\\dfrac{35}{9}}", "-\\frac{35}{9}", C),
    ("\\boxed{-\\frac38}", "-\\frac{3}{8}", C),
    ("\\boxed{\\frac{270}{7}}", "\\frac{270}7\\text{ degrees}", C),
    ("\\boxed{\\frac{270}{7}^\\circ}", "\\frac{270}7\\text{ degrees}", C),
    ("\\boxed{1\\frac{4}{5}}", "1\\frac{4}{5}", C),
    ("\\boxed{\\frac{9}{5}}", "1\\frac{4}{5}", C),
    ("\\boxed{1.8}", "1\\frac{4}{5}", C),
    ("\\boxed{\\frac{4}{5}}", "1\\frac{4}{5}", W),
    ("\\boxed{137.5}", "137 \\frac{1}{2}", C),
    ("\\boxed{\\frac{275}{2}}", "137 \\frac{1}{2}", C),
    ("\\boxed{-1\\frac{1}{2}}", "-\\frac{3}{2}", C),
    ("\\boxed{\\sqrt{51}}", "\\sqrt{51}", C),
    ("\\boxed{\\sqrt 5}", "\\sqrt5", C),
    ("\\boxed{\\sqrt{50}}", "\\sqrt{51}", W),
    ("\\boxed{11\\sqrt{2}}", "11\\sqrt2", C),
    ("\\boxed{11 \\sqrt 2}", "11\\sqrt2", C),
    ("\\boxed{\\sqrt{242}}", "11\\sqrt2", C),
    ("\\boxed{15.556349186}", "11\\sqrt2", C),
    ("\\boxed{15.56}", "11\\sqrt2", W),
    ("\\boxed{3\\sqrt{13}}", "3\\sqrt{13}", C),
    ("\\boxed{\\sqrt{117}}", "3\\sqrt{13}", C),
    ("\\boxed{3\\sqrt{12}}", "3\\sqrt{13}", W),
    ("\\boxed{\\frac{\\sqrt{3}}{3}}", "\\frac{\\sqrt{3}}{3}", C),
    ("\\boxed{\\frac{1}{\\sqrt{3}}}", "\\frac{\\sqrt{3}}{3}", C),
    ("\\boxed{\\frac{1}{\\sqrt3}}", "\\frac{\\sqrt{3}}{3}", C),
    ("\\boxed{\\frac{3\\sqrt3}{4}}", "\\frac{3\\sqrt{3}}{4}", C),
    ("\\boxed{\\frac{3}{4}\\sqrt{3}}", "\\frac{3\\sqrt{3}}{4}", C),
    ("\\boxed{\\frac{\\sqrt{21}}{5}}", "\\frac{\\sqrt{21}}{5}", C),
    ("\\boxed{\\sqrt{\\frac{21}{25}}}", "\\frac{\\sqrt{21}}{5}", C),
    ("\\boxed{1+2\\sqrt{3}}", "1+2\\sqrt{3}", C),
    ("\\boxed{2\\sqrt{3}+1}", "1+2\\sqrt{3}", C),
    ("\\boxed{2\\sqrt{3}-1}", "1+2\\sqrt{3}", W),
    ("\\boxed{11 \\sqrt{5} + 11}", "11 \\sqrt{5} + 11", C),
    ("\\boxed{11(\\sqrt{5}+1)}", "11 \\sqrt{5} + 11", C),
    ("\\boxed{-\\sqrt{3}}", "-\\sqrt{3}", C),
    ("\\boxed{\\sqrt{3}}", "-\\sqrt{3}", W),
    ("\\boxed{\\sqrt[3]{8}}", "2", C),
    ("\\boxed{\\sqrt[3]{-8}}", "-2", C),
    ("\\boxed{2^{10}}", "1024", C),
    ("\\boxed{2^10}", "1024", C),
    ("\\boxed{.0000672}", ".0000672", C),
    ("\\boxed{6.72 \\times 10^{-5}}", ".0000672", C),
    ("\\boxed{0.0000672}", ".0000672", C),
    ("\\boxed{0.35625}", ".35625", C),
    ("\\boxed{\\frac{57}{160}}", ".35625", C),
    ("\\boxed{326.5}", "326.5", C),
    ("\\boxed{\\frac{653}{2}}", "326.5", C),
    ("\\boxed{3.21}", "3.21", C),
    ("\\boxed{3.2}", "3.21", W),
    ("\\boxed{1.25}", "1.25", C),
    ("\\boxed{\\frac54}", "1.25", C),
    ("\\boxed{4.5}", "4.5", C),
    ("\\boxed{\\frac{9}{2}}", "4.5", C),
    ("\\boxed{0.15}", "0.15", C),
    // a percent sign makes the fraction a reading too (policy in the crate docs)
    ("\\boxed{15\\%}", "0.15", C),
    ("\\boxed{15}", "0.15", W),
    ("\\boxed{\\frac{448}{15625}}", "\\frac{448}{15625}", C),
    ("\\boxed{0.028672}", "\\frac{448}{15625}", C),
    ("\\boxed{\\frac{3840}{289}}", "\\frac{3840}{289}", C),
    ("\\boxed{\\frac{1997}{2}}", "\\frac{1997}{2}", C),
    ("\\boxed{998.5}", "\\frac{1997}{2}", C),
    ("\\boxed{\\frac{2}{1005}}", "\\frac{2}{1005}", C),
    ("\\boxed{\\frac{1}{1005}}", "\\frac{2}{1005}", W),
    // ---------------- pi / degrees / units / money ----------------
    ("\\boxed{\\pi}", "\\pi", C),
    ("\\boxed{3.14159265359}", "\\pi", C),
    ("\\boxed{3.14}", "\\pi", W),
    ("\\boxed{12\\pi}", "12\\pi", C),
    ("\\boxed{12 \\pi}", "12\\pi", C),
    ("\\boxed{\\pi \\cdot 12}", "12\\pi", C),
    ("\\boxed{6\\pi}", "12\\pi", W),
    ("\\boxed{288\\pi}", "288 \\pi", C),
    ("\\boxed{7\\pi}", "7\\pi", C),
    ("\\boxed{8\\pi}", "8 \\pi", C),
    ("\\boxed{18+2\\pi}", "18+2\\pi", C),
    ("\\boxed{2\\pi+18}", "18+2\\pi", C),
    ("\\boxed{2(\\pi+9)}", "18+2\\pi", C),
    ("\\boxed{\\frac{20000}{\\pi}}", "\\frac{20000}{\\pi}", C),
    ("\\boxed{-\\frac{\\pi}{6}}", "-\\frac{\\pi}{6}", C),
    ("\\boxed{\\frac{-\\pi}{6}}", "-\\frac{\\pi}{6}", C),
    ("\\boxed{\\frac{\\pi}{6}}", "-\\frac{\\pi}{6}", W),
    ("\\boxed{\\frac{11\\pi}{6}}", "-\\frac{\\pi}{6}", W),
    ("\\boxed{106^\\circ}", "106^\\circ", C),
    ("\\boxed{106}", "106^\\circ", C),
    ("\\boxed{106^{\\circ}}", "106^\\circ", C),
    ("\\boxed{106 \\text{ degrees}}", "106^\\circ", C),
    ("\\boxed{106\u{b0}}", "106^\\circ", C),
    ("\\boxed{107^\\circ}", "106^\\circ", W),
    ("\\boxed{120^\\circ}", "120^\\circ", C),
    ("\\boxed{90}", "90^\\circ", C),
    ("\\boxed{36^\\circ}", "36^\\circ", C),
    ("\\boxed{\\$18.90}", "\\$18.90", C),
    ("\\boxed{18.9}", "\\$18.90", C),
    ("\\boxed{18.09}", "\\$18.90", W),
    ("\\boxed{\\$32,348}", "\\$32,\\!348", C),
    ("\\boxed{32348}", "\\$32,\\!348", C),
    ("\\boxed{\\$36}", "\\$36", C),
    ("\\boxed{10080}", "10,\\!080", C),
    ("\\boxed{10,080}", "10,\\!080", C),
    ("\\boxed{11111111100}", "11,\\! 111,\\! 111,\\! 100", C),
    ("\\boxed{58,500}", "58,500", C),
    ("\\boxed{58500}", "58,500", C),
    ("\\boxed{5.4}", "5.4 \\text{ cents}", C),
    ("\\boxed{5.4 \\text{ cents}}", "5.4 \\text{ cents}", C),
    ("\\boxed{15}", "15\\mbox{ cm}^2", C),
    ("\\boxed{15 \\text{ cm}^2}", "15\\mbox{ cm}^2", C),
    ("\\boxed{16 \\text{ cm}^2}", "15\\mbox{ cm}^2", W),
    ("\\boxed{864}", "864 \\mbox{ inches}^2", C),
    ("\\boxed{864 \\text{ square inches}}", "864 \\mbox{ inches}^2", C),
    // ---------------- integers (AIME / AMC) ----------------
    ("\\boxed{204}", "204", C),
    ("\\boxed{025}", "25", C),
    ("\\boxed{25}", "025", C),
    ("\\boxed{073}", "073", C),
    ("\\boxed{73}", "073", C),
    ("\\boxed{74}", "073", W),
    ("\\boxed{809}", "809", C),
    ("\\boxed{890}", "809", W),
    ("The answer is $\\boxed{113}$", "113", C),
    ("The answer is 113", "113", C),
    ("\\boxed{902}", "902", C),
    ("\\boxed{27}", "27", C),
    ("\\boxed{3159}", "3159", C),
    ("\\boxed{-1}", "-1", C),
    ("\\boxed{1}", "-1", W),
    ("\\boxed{27.0}", "27", C),
    ("<think>maybe 3</think> The answer is \\boxed{7}", "7", C),
    ("\\boxed{5} \\boxed{7}", "7", C),
    ("\\boxed{7} \\boxed{5}", "7", W),
    ("\\boxed{7} and then \\boxed{", "7", C),
    ("\\fbox{7}", "7", C),
    ("\\boxed 7", "7", C),
    ("$\\boxed 7$.", "7", C),
    ("\\boxed{ 7 }", "7", C),
    ("\\boxed{\\textbf{7}}", "7", C),
    ("\\boxed{\\mathbf{7}}", "7", C),
    ("**7**", "7", C),
    ("$7$", "7", C),
    ("\\(7\\)", "7", C),
    ("\\[7\\]", "7", C),
    // ---------------- multiple choice / text ----------------
    ("\\boxed{\\text{(B)}}", "\\text{(B)}", C),
    ("\\boxed{(B)}", "\\text{(B)}", C),
    ("\\boxed{B}", "\\text{(B)}", C),
    ("\\boxed{\\textbf{(B)}}", "\\text{(B)}", C),
    ("\\boxed{C}", "\\text{(B)}", W),
    ("\\boxed{\\text{(E)}}", "\\text{(E)}", C),
    ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", C),
    ("\\boxed{Evelyn}", "\\text{Evelyn}", C),
    ("\\boxed{evelyn}", "\\text{Evelyn}", C),
    ("\\boxed{\\text{Navin}}", "\\text{Evelyn}", W),
    ("\\boxed{\\text{east}}", "\\text{east}", C),
    ("\\boxed{East}", "\\text{east}", C),
    ("\\boxed{\\text{west}}", "\\text{east}", W),
    ("\\boxed{\\text{ellipse}}", "\\text{ellipse}", C),
    ("\\boxed{\\text{parabola}}", "\\text{ellipse}", W),
    ("\\boxed{\\text{even}}", "\\text{even}", C),
    ("\\boxed{\\text{odd}}", "\\text{even}", W),
    // ---------------- tuples / intervals / sets ----------------
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)", C),
    ("\\boxed{(3, \\frac{\\pi}{2})}", "\\left( 3, \\frac{\\pi}{2} \\right)", C),
    ("\\boxed{(3,\\pi/2)}", "\\left( 3, \\frac{\\pi}{2} \\right)", C),
    ("\\boxed{(3, 1.5707963268)}", "\\left( 3, \\frac{\\pi}{2} \\right)", C),
    ("\\boxed{(\\frac{\\pi}{2}, 3)}", "\\left( 3, \\frac{\\pi}{2} \\right)", W),
    ("\\boxed{(3, \\pi)}", "\\left( 3, \\frac{\\pi}{2} \\right)", W),
    ("\\boxed{(-1,6)}", "(-1,6)", C),
    ("\\boxed{(6,-1)}", "(-1,6)", W),
    ("\\boxed{(-1, 6)}", "(-1,6)", C),
    ("\\boxed{(-1,6,0)}", "(-1,6)", W),
    ("\\boxed{(15,-29)}", "(15,-29)", C),
    ("\\boxed{(1,-16,-4,43)}", "(1,-16,-4,43)", C),
    ("\\boxed{(1,-16,-4,42)}", "(1,-16,-4,43)", W),
    ("\\boxed{(6,31,-1)}", "(6,31,-1)", C),
    ("\\boxed{\\left( \\frac{3}{2}, -13 \\right)}", "\\left( \\frac{3}{2}, -13 \\right)", C),
    ("\\boxed{(1.5,-13)}", "\\left( \\frac{3}{2}, -13 \\right)", C),
    ("\\boxed{(-\\infty, 0]}", "(-\\infty, 0]", C),
    ("\\boxed{(-\\infty,0]}", "(-\\infty, 0]", C),
    ("\\boxed{(-\\infty, 0)}", "(-\\infty, 0]", W),
    ("\\boxed{[-\\infty, 0]}", "(-\\infty, 0]", W),
    ("\\boxed{(3,4]}", "(3,4]", C),
    ("\\boxed{[3,4]}", "(3,4]", W),
    ("\\boxed{(3,4)}", "(3,4]", W),
    ("\\boxed{(2,\\infty)}", "(2,\\infty)", C),
    ("\\boxed{(2, \\infty)}", "(2,\\infty)", C),
    ("\\boxed{[2,\\infty)}", "(2,\\infty)", W),
    ("\\boxed{(5,\\infty)}", "(5,\\infty)", C),
    ("\\boxed{(-\\infty, 2) \\cup (3, \\infty)}", "(-\\infty, 2) \\cup (3, \\infty)", C),
    ("\\boxed{(3, \\infty) \\cup (-\\infty, 2)}", "(-\\infty, 2) \\cup (3, \\infty)", C),
    ("\\boxed{(-\\infty, 2] \\cup (3, \\infty)}", "(-\\infty, 2) \\cup (3, \\infty)", W),
    ("\\boxed{(0,9) \\cup (9,36)}", "(0,9) \\cup (9,36)", C),
    ("\\boxed{(0,36)}", "(0,9) \\cup (9,36)", W),
    ("\\boxed{(2,12) \\cup (12,102)}", "(2,12) \\cup (12,102)", C),
    ("\\boxed{(-\\sqrt{3}, \\sqrt{3})}", "(-\\sqrt{3}, \\sqrt{3})", C),
    ("\\boxed{(-\\sqrt3,\\sqrt3)}", "(-\\sqrt{3}, \\sqrt{3})", C),
    ("\\boxed{\\left(\\frac{3}{5},\\frac{8}{3}\\right]}", "\\left(\\frac{3}{5},\\frac{8}{3}\\right]", C),
    ("\\boxed{(0.6, 8/3]}", "\\left(\\frac{3}{5},\\frac{8}{3}\\right]", C),
    ("\\boxed{\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]}", "\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", C),
    ("\\boxed{[\\pi^2/8, 5\\pi^2/4]}", "\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", C),
    ("\\boxed{[-2,7]}", "x \\in [-2,7]", C),
    ("\\boxed{x \\in [-2, 7]}", "x \\in [-2,7]", C),
    ("\\boxed{[-2,7)}", "x \\in [-2,7]", W),
    ("\\boxed{-2, 1}", "-2,1", C),
    ("\\boxed{1, -2}", "-2,1", C),
    ("\\boxed{1,-2}", "1,-2", C),
    ("\\boxed{x=1, x=-2}", "1,-2", C),
    ("\\boxed{-2}", "-2,1", W),
    ("\\boxed{1, 2}", "-2,1", W),
    ("\\boxed{3, 5, 7}", "3, 5, 7", C),
    ("\\boxed{7, 5, 3}", "3, 5, 7", C),
    ("\\boxed{\\{3, 5, 7\\}}", "3, 5, 7", C),
    ("\\boxed{3, 5}", "3, 5, 7", W),
    ("\\boxed{3, 5, 7, 9}", "3, 5, 7", W),
    ("\\boxed{1 \\pm \\sqrt{19}}", "1 \\pm \\sqrt{19}", C),
    ("\\boxed{1+\\sqrt{19}, 1-\\sqrt{19}}", "1 \\pm \\sqrt{19}", C),
    ("\\boxed{1-\\sqrt{19}, 1+\\sqrt{19}}", "1 \\pm \\sqrt{19}", C),
    ("\\boxed{1+\\sqrt{19}}", "1 \\pm \\sqrt{19}", W),
    ("\\boxed{3 \\pm 2\\sqrt{2}}", "3 \\pm 2 \\sqrt{2}", C),
    ("\\boxed{3+2\\sqrt2,3-2\\sqrt2}", "3 \\pm 2 \\sqrt{2}", C),
    ("\\boxed{\\{1\\pm\\sqrt{5},-2\\}}", "\\{1\\pm\\sqrt{5},-2\\}", C),
    ("\\boxed{-2, 1+\\sqrt5, 1-\\sqrt5}", "\\{1\\pm\\sqrt{5},-2\\}", C),
    ("\\boxed{-2, 1+\\sqrt5}", "\\{1\\pm\\sqrt{5},-2\\}", W),
    ("\\boxed{\\{\\}}", "\\{\\}", C),
    ("\\boxed{\\{1, 2\\}}", "\\{2, 1\\}", C),
    ("\\boxed{\\{1, 2\\}}", "\\{1, 3\\}", W),
    ("\\boxed{(1, 2)}", "\\{1, 2\\}", W),
    // ---------------- matrices / vectors ----------------
    ("\\boxed{\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}}", "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", C),
    ("\\boxed{\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}}", "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", C),
    ("\\boxed{\\begin{bmatrix} -1 & 0 \\\\ 0 & -1 \\end{bmatrix}}", "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", C),
    ("\\boxed{\\begin{pmatrix} 1 & 0 \\\\ 0 & -1 \\end{pmatrix}}", "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", W),
    ("\\boxed{\\begin{pmatrix} -1 & 0 \\end{pmatrix}}", "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", W),
    ("\\boxed{\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}}", "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", C),
    ("\\boxed{\\begin{pmatrix} -\\frac{1}{3} \\\\ \\frac{2}{3} \\\\ \\frac{5}{3} \\end{pmatrix}}", "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", C),
    ("\\boxed{\\left(-\\frac{1}{3}, \\frac{2}{3}, \\frac{5}{3}\\right)}", "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", C),
    ("\\boxed{\\begin{pmatrix} 1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}}", "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}", W),
    ("\\boxed{\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}}", "\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}", C),
    ("\\boxed{\\begin{pmatrix} -18 \\\\ -49 \\end{pmatrix}}", "\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}", W),
    ("\\boxed{\\begin{pmatrix} 16/49 \\\\ 48/49 \\\\ 24/49 \\end{pmatrix}}", "\\begin{pmatrix} 16/49 \\\\ 48/49 \\\\ 24/49 \\end{pmatrix}", C),
    ("\\boxed{\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}}", "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", C),
    ("\\boxed{\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}}", "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", C),
    // ---------------- algebraic expressions ----------------
    ("\\boxed{-13x+3}", "-13x+3", C),
    ("\\boxed{3-13x}", "-13x+3", C),
    ("\\boxed{3 - 13 x}", "-13x+3", C),
    ("\\boxed{13x+3}", "-13x+3", W),
    ("\\boxed{15x - 80}", "15x - 80", C),
    ("\\boxed{5(3x-16)}", "15x - 80", C),
    ("\\boxed{15x-81}", "15x - 80", W),
    ("\\boxed{(a+5)(b+2)}", "(a+5)(b+2)", C),
    ("\\boxed{(b+2)(a+5)}", "(a+5)(b+2)", C),
    ("\\boxed{ab+2a+5b+10}", "(a+5)(b+2)", C),
    ("\\boxed{(a+2)(b+5)}", "(a+5)(b+2)", W),
    ("\\boxed{x^3+3x-6}", "x^3+3x-6", C),
    ("\\boxed{x^{3} + 3x - 6}", "x^3+3x-6", C),
    ("\\boxed{x^3+3x+6}", "x^3+3x-6", W),
    ("\\boxed{x^5 - x^4 + x^3 - x^2 + x - 1}", "x^5 - x^4 + x^3 - x^2 + x - 1", C),
    ("\\boxed{\\frac{x^6-1}{x+1}}", "x^5 - x^4 + x^3 - x^2 + x - 1", C),
    ("\\boxed{\\frac{x^9-1}{x-1}}", "x^8 + x^7 + x^6 + x^5 + x^4 + x^3 + x^2 + x + 1", C),
    ("\\boxed{8n^2 + 4n + 1}", "8n^2 + 4n + 1", C),
    ("\\boxed{1 + 4n + 8n^2}", "8n^2 + 4n + 1", C),
    ("\\boxed{8m^2 + 4m + 1}", "8n^2 + 4n + 1", W),
    ("\\boxed{6r^2-4r-24}", "6r^2-4r-24", C),
    ("\\boxed{2(3r^2-2r-12)}", "6r^2-4r-24", C),
    ("\\boxed{5r^5}", "5r^5", C),
    ("\\boxed{5 r^{5}}", "5r^5", C),
    ("\\boxed{5r^4}", "5r^5", W),
    ("\\boxed{3R^2}", "3R^2", C),
    ("\\boxed{2k}", "2k", C),
    ("\\boxed{k+k}", "2k", C),
    ("\\boxed{2k+2}", "2k+2", C),
    ("\\boxed{2(k+1)}", "2k+2", C),
    ("\\boxed{p - q}", "p - q", C),
    ("\\boxed{-q+p}", "p - q", C),
    ("\\boxed{q - p}", "p - q", W),
    ("\\boxed{\\frac{11+9a}{20}}", "\\frac{11+9a}{20}", C),
    ("\\boxed{\\frac{11}{20}+\\frac{9a}{20}}", "\\frac{11+9a}{20}", C),
    ("\\boxed{\\cot x}", "\\cot x", C),
    ("\\boxed{\\frac{\\cos x}{\\sin x}}", "\\cot x", C),
    ("\\boxed{\\tan x}", "\\cot x", W),
    ("\\boxed{\\sin^2 x + \\cos^2 x}", "1", C),
    ("\\boxed{\\sqrt{x^2}}", "x", C),
    ("\\boxed{|x|}", "x", C),
    ("\\boxed{\\left| x \\right|}", "|x|", C),
    ("\\boxed{-2 + 7i}", "-2 + 7i", C),
    ("\\boxed{7i - 2}", "-2 + 7i", C),
    ("\\boxed{-2 - 7i}", "-2 + 7i", W),
    ("\\boxed{1 - 12i}", "1 - 12i", C),
    ("\\boxed{1+274i}", "1+274i", C),
    ("\\boxed{6 - 5i}", "6 - 5i", C),
    ("\\boxed{6+9i}", "6+9i", C),
    ("\\boxed{9i+6}", "6+9i", C),
    ("\\boxed{\\frac{n(n+1)}{2}}", "\\frac{n^2+n}{2}", C),
    ("\\boxed{\\binom{5}{2}}", "10", C),
    ("\\boxed{5!}", "120", C),
    ("\\boxed{\\frac{6!}{3!}}", "120", C),
    ("\\boxed{2^{-1}}", "\\frac12", C),
    ("\\boxed{e^{x}}", "e^x", C),
    ("\\boxed{\\ln 2}", "\\log 2", C),
    // ---------------- equations ----------------
    ("\\boxed{x=5}", "x=5", C),
    ("\\boxed{5}", "x=5", C),
    ("\\boxed{x = 5}", "5", C),
    ("\\boxed{x=6}", "x=5", W),
    ("\\boxed{y = -2x}", "y = -2x", C),
    ("\\boxed{-2x}", "y = -2x", C),
    ("\\boxed{y=2x}", "y = -2x", W),
    ("\\boxed{y = 2x + 3}", "y = 2x + 3", C),
    ("\\boxed{y=3+2x}", "y = 2x + 3", C),
    ("\\boxed{2x+3=y}", "y = 2x + 3", C),
    ("\\boxed{2x - y + 3 = 0}", "y = 2x + 3", C),
    ("\\boxed{y = 2x - 3}", "y = 2x + 3", W),
    ("\\boxed{5x - 7y + 11z + 4 = 0}", "5x - 7y + 11z + 4 = 0", C),
    ("\\boxed{0 = 5x - 7y + 11z + 4}", "5x - 7y + 11z + 4 = 0", C),
    ("\\boxed{-5x + 7y - 11z - 4 = 0}", "5x - 7y + 11z + 4 = 0", C),
    ("\\boxed{5x - 7y + 11z = -4}", "5x - 7y + 11z + 4 = 0", C),
    ("\\boxed{5x - 7y + 11z - 4 = 0}", "5x - 7y + 11z + 4 = 0", W),
    ("\\boxed{f(x) = x^2}", "x^2", C),
    // ---------------- base subscripts ----------------
    ("\\boxed{204_5}", "204_5", C),
    ("\\boxed{204}", "204_5", C),
    ("\\boxed{204_{5}}", "204_5", C),
    ("\\boxed{2516_8}", "2516_8", C),
    ("\\boxed{4210_{5}}", "4210_{5}", C),
    ("\\boxed{4210_5}", "4210_{5}", C),
    ("\\boxed{4211_5}", "4210_{5}", W),
    ("\\boxed{52_8}", "52_8", C),
    ("\\boxed{40_9}", "40_9", C),
    ("\\boxed{4343_6}", "4343_6", C),
    // ---------------- extraction phrases ----------------
    ("Thus, the final answer is 42.", "42", C),
    ("Thus, the final answer is 42. I hope it is correct.", "42", C),
    ("The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac12", C),
    ("So the answer is \\(\\frac{3}{4}\\).", "0.75", C),
    ("The answer is: $(1, 2)$", "(1,2)", C),
    ("We get 3 and then the answer is 4.\nDone", "4", C),
    ("The answer is 4. Wait, no, the answer is 5.", "5", C),
    ("The answer is 4. Wait, no, the answer is 5.", "4", W),
    ("after all that: 1/2", "\\frac12", C),
    ("-7", "-7", C),
    // ---------------- MATH test (5000) answer styles ----------------
    ("\\boxed{65}", "65 \\text{ children tickets }", C),
    ("\\boxed{66}", "65 \\text{ children tickets }", W),
    ("\\boxed{19, 43}", "19 \\text{ and }43", C),
    ("\\boxed{43 \\text{ and } 19}", "19 \\text{ and }43", C),
    ("\\boxed{19, 42}", "19 \\text{ and }43", W),
    ("\\boxed{-5, -2, 7}", "7, -2, \\text{ and } -5", C),
    ("\\boxed{3:1}", "3:1", C),
    ("\\boxed{1:3}", "3:1", W),
    ("\\boxed{\\text{June 20}}", "\\text{June 20}", C),
    ("\\boxed{\\text{june 20}}", "\\text{June 20}", C),
    ("\\boxed{\\text{June 21}}", "\\text{June 20}", W),
    ("\\boxed{\\text{4:30 p.m.}}", "\\text{4:30 p.m.}", C),
    ("\\boxed{9 \\text{ a.m.}}", "9\\text{ a.m.}", C),
    ("\\boxed{x < 5}", "x<5", C),
    ("\\boxed{x \\le 5}", "x \\leq 5", C),
    ("\\boxed{x \\ge 5}", "x \\leq 5", W),
    ("x = -7", "-7", C),
    ("the value is -7", "-7", C),
];

fn label(s: Status) -> &'static str {
    match s {
        Status::Correct => "C",
        Status::Wrong => "W",
        Status::UnparsableAnswer => "UA",
        Status::UnparsableGold => "UG",
    }
}

#[test]
fn table_of_cases() {
    let opts = Options::default();
    let mut fails = Vec::new();
    for (resp, gold, want) in CASES {
        let v = verify(resp, gold, &opts);
        if v.status != *want {
            fails.push(format!(
                "  {resp:?} vs {gold:?}: want {} got {} (extracted {:?}, norm {:?} / {:?})",
                label(*want),
                label(v.status),
                v.extracted.as_ref().map(|e| &e.text),
                v.answer_normalized,
                v.gold_normalized
            ));
        }
    }
    let count = |s| CASES.iter().filter(|c| c.2 == s).count();
    println!(
        "{} cases: {} correct, {} wrong, {} unparsable answer, {} unparsable gold",
        CASES.len(),
        count(C),
        count(W),
        count(UA),
        count(UG)
    );
    assert!(
        fails.is_empty(),
        "{} failing cases:\n{}",
        fails.len(),
        fails.join("\n")
    );
    assert!(CASES.len() >= 300);
}

#[test]
fn verdict_serialization() {
    let v = verify("\\boxed{\\frac12}", "0.5", &Options::default());
    let j = serde_json::to_value(&v).unwrap();
    assert_eq!(j["status"], "correct");
    assert_eq!(j["extracted"]["method"], "boxed");
    assert_eq!(j["method"], "numeric");
    let back: egi_verify::Verdict = serde_json::from_value(j).unwrap();
    assert_eq!(back, v);
    for (s, name) in [
        (Status::Wrong, "wrong"),
        (Status::UnparsableAnswer, "unparsable_answer"),
        (Status::UnparsableGold, "unparsable_gold"),
    ] {
        assert_eq!(serde_json::to_value(s).unwrap(), name);
    }
    assert_eq!(
        serde_json::to_value(ExtractMethod::Gsm8kHash).unwrap(),
        "gsm8k_hash"
    );
    assert_eq!(
        serde_json::to_value(ExtractMethod::LastNumber).unwrap(),
        "last_number"
    );
    assert_eq!(
        serde_json::to_value(ExtractMethod::AnswerPhrase).unwrap(),
        "answer_phrase"
    );
}

#[test]
fn extraction_methods() {
    let o = Options::default();
    let m = |r: &str| extract_answer(r, &o).map(|e| (e.text, e.method));
    assert_eq!(
        m("so \\boxed{\\frac{1}{2}} done"),
        Some(("\\frac{1}{2}".into(), ExtractMethod::Boxed))
    );
    assert_eq!(
        m("\\boxed{\\{1,2\\}}"),
        Some(("\\{1,2\\}".into(), ExtractMethod::Boxed))
    );
    assert_eq!(
        m("\\boxed{a} then \\fbox{b}"),
        Some(("b".into(), ExtractMethod::Boxed))
    );
    assert_eq!(
        m("work\n#### 1,234\n"),
        Some(("1,234".into(), ExtractMethod::Gsm8kHash))
    );
    assert_eq!(
        m("The answer is 12."),
        Some(("12".into(), ExtractMethod::AnswerPhrase))
    );
    assert_eq!(
        m("So the final answer is: $x^2$."),
        Some(("x^2".into(), ExtractMethod::AnswerPhrase))
    );
    assert_eq!(
        m("I got 3 then 4 and finally 5 apples"),
        Some(("5".into(), ExtractMethod::LastNumber))
    );
    assert_eq!(
        m("totals 1,234,567 overall"),
        Some(("1234567".into(), ExtractMethod::LastNumber))
    );
    assert_eq!(
        m("ratio is 3/4 here"),
        Some(("3/4".into(), ExtractMethod::LastNumber))
    );
    assert_eq!(
        m("down to -12 degrees"),
        Some(("-12".into(), ExtractMethod::LastNumber))
    );
    assert_eq!(
        m("\\frac{1}{2}"),
        Some(("\\frac{1}{2}".into(), ExtractMethod::Whole))
    );
    assert_eq!(m("Evelyn"), Some(("Evelyn".into(), ExtractMethod::Whole)));
    assert_eq!(
        m("nothing to see"),
        Some(("nothing to see".into(), ExtractMethod::Whole))
    );
    assert_eq!(m("there is nothing to see here at all"), None);
    assert_eq!(m(""), None);
}

#[test]
fn think_close_requirement() {
    let o = Options {
        require_think_close: true,
        ..Options::default()
    };
    let r = "<think>the answer is \\boxed{3}</think>So \\boxed{4}";
    assert_eq!(verify(r, "4", &o).status, Status::Correct);
    assert_eq!(
        verify("<think>\\boxed{4}", "4", &o).status,
        Status::UnparsableAnswer
    );
    assert_eq!(
        verify("<think>x</think>", "4", &o).status,
        Status::UnparsableAnswer
    );
    assert_eq!(
        verify("<think>\\boxed{4}", "4", &Options::default()).status,
        Status::Correct
    );
}

#[test]
fn tolerance_option() {
    let loose = Options {
        rel_tol: 1e-2,
        ..Options::default()
    };
    assert_eq!(
        verify("\\boxed{3.14}", "\\pi", &loose).status,
        Status::Correct
    );
    assert_eq!(
        verify("\\boxed{3.14}", "\\pi", &Options::default()).status,
        Status::Wrong
    );
    let nan = Options {
        rel_tol: f64::NAN,
        ..Options::default()
    };
    assert_eq!(verify("\\boxed{3.14}", "\\pi", &nan).status, Status::Wrong);
}

#[test]
fn multiple_golds() {
    let o = Options::default();
    let golds = vec!["\\frac{1}{2}".to_string(), "\\text{(B)}".to_string()];
    assert_eq!(
        verify_any("\\boxed{0.5}", &golds, &o).status,
        Status::Correct
    );
    assert_eq!(verify_any("\\boxed{B}", &golds, &o).status, Status::Correct);
    assert_eq!(verify_any("\\boxed{C}", &golds, &o).status, Status::Wrong);
    assert_eq!(
        verify_any("\\boxed{C}", &[], &o).status,
        Status::UnparsableGold
    );
    let bad = vec!["\\frac{1}{".to_string(), "(1,".to_string()];
    assert_eq!(
        verify_any("\\boxed{C}", &bad, &o).status,
        Status::UnparsableGold
    );
    let mixed = vec!["\\frac{1}{".to_string(), "7".to_string()];
    assert_eq!(verify_any("\\boxed{7}", &mixed, &o).status, Status::Correct);
    assert_eq!(verify_any("\\boxed{8}", &mixed, &o).status, Status::Wrong);
    assert_eq!(
        verify_any("no answer here whatsoever at all", &mixed, &o).status,
        Status::UnparsableAnswer
    );
}

#[test]
fn gold_records() {
    use serde_json::json;
    assert_eq!(
        gold_from_record(&json!({"answer": "He made $1,200.\n#### 1,234"})),
        Some("1234".into())
    );
    assert_eq!(
        gold_from_record(&json!({"answer": "so 5\n#### -5"})),
        Some("-5".into())
    );
    assert_eq!(
        gold_from_record(&json!({"answer": "\\frac{1}{2}"})),
        Some("\\frac{1}{2}".into())
    );
    assert_eq!(gold_from_record(&json!({"answer": 70})), Some("70".into()));
    assert_eq!(
        gold_from_record(&json!({"answer": "025"})),
        Some("025".into())
    );
    assert_eq!(gold_from_record(&json!({"answer": 9.0})), Some("9".into()));
    assert_eq!(
        gold_from_record(&json!({"answer": -1.0})),
        Some("-1".into())
    );
    assert_eq!(
        gold_from_record(&json!({"answer": 2.5})),
        Some("2.5".into())
    );
    assert_eq!(
        gold_from_record(&json!({"solution": "so $\\boxed{3}$, no: $\\boxed{\\frac{1}{2}}$."})),
        Some("\\frac{1}{2}".into())
    );
    assert_eq!(gold_from_record(&json!({"problem": "x"})), None);
    assert_eq!(gold_from_record(&json!({"answer": null})), None);
    assert_eq!(gold_from_record(&json!({"solution": "no box"})), None);
    assert_eq!(gold_from_record(&json!("just a string")), None);
}
