import { describe, expect, it } from 'vitest';
import { passesLuhn, personalIdentifiersIn, residentIdCheckCharacter } from '../../src/catalog/identity-numbers.js';

const residentId = (first17: string) => first17 + residentIdCheckCharacter(first17);

describe('personal identifiers in free text', () => {
  it('finds a resident ID number inside Chinese text, with or without a valid check character', () => {
    expect(personalIdentifiersIn(`请核实${residentId('31011519900307123')}的记录`)).toEqual(['resident ID number']);
    expect(personalIdentifiersIn('身份证号310115199003071230，谢谢')).toEqual(['resident ID number']);
    expect(personalIdentifiersIn('31011519900307123x')).toEqual(['resident ID number']);
  });

  it('finds a mobile number written plainly, with +86, with separators or in full-width digits', () => {
    for (const text of ['联系13812345678', '+86 138 1234 5678', '电话：138-1234-5678', '手机１３８１２３４５６７８']) expect(personalIdentifiersIn(text), text).toEqual(['mobile number']);
  });

  it('finds a bank card number that passes its Luhn check, written whole or in groups of four', () => {
    expect(passesLuhn('79927398713')).toBe(true);
    for (const text of ['卡号6217000010000000003', '退款至 4539 1488 0343 6467']) expect(personalIdentifiersIn(text), text).toEqual(['bank card number']);
  });

  it('does not take a number that fails the Luhn check, or a resident ID number, for a card', () => {
    expect(personalIdentifiersIn('订单号 4539148803436468')).toEqual([]);
    // An ID number whose digits happen to pass the card check, as one in ten do.
    const id = Array.from({ length: 100 }, (_, n) => residentId(`31011519900307${100 + n}`)).find((candidate) => /\d$/.test(candidate) && passesLuhn(candidate))!;
    expect(personalIdentifiersIn(`身份证${id}`)).toEqual(['resident ID number']);
  });

  it('passes figures that are not identifiers: a credit code, years, amounts, an 18-digit number without a date of birth', () => {
    for (const text of ['统一社会信用代码91310115MA1H7GXX6K的企业', '2020—2025 年各镇用电量', '金额 12345678901 元以上', '123456789012345678', '编号 1381234567800']) expect(personalIdentifiersIn(text), text).toEqual([]);
  });
});
